"""The face explorer: a local web page over a trained generator (server and static page)."""
