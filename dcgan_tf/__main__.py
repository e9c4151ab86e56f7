"""python -m dcgan_tf COMMAND ...: the same as the dcgan-tf command."""

from dcgan_tf.cli.main import main

main()
