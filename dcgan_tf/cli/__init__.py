"""The command line: one `dcgan-tf` command with a sub-command per task, and the flags built from Config."""
