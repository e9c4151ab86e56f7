"""Generate faces from a trained model: python generate.py MODEL (the same as `dcgan-tf generate`)."""

from dcgan_tf.cli.generate import main

if __name__ == "__main__":
    main()
