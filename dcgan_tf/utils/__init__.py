"""Small pieces every part uses: atomic files, memory checks, stop signals, batches, image grids."""
