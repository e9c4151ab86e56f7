"""Train a DCGAN: python train.py --preset keras64 --data celeba (the same as `dcgan-tf train`)."""

from dcgan_tf.cli.train import main

if __name__ == "__main__":
    main()
