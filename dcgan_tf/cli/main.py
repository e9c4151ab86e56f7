"""dcgan-tf COMMAND ...: one entry point for every task (also python -m dcgan_tf COMMAND ...).

Each command is a module of dcgan_tf.cli with a main(argv), imported only when it runs, so
`dcgan-tf --help` answers without loading TensorFlow.
"""

import functools
import importlib
import os
import sys

COMMANDS = {
    "train": "train a GAN (all Config fields are flags; --resume continues a run)",
    "generate": "make faces from a trained model: grids, walks, queries, edits, arithmetic",
    "evaluate": "score a model or a folder of images: FID, KID and face rate on held-out faces",
    "export": "write a model as a SavedModel (TF Serving layout), .keras, TFLite or ONNX, each checked",
    "explore": "a local web page to go through faces, walk between them and turn attribute dials",
    "attributes": "train the attribute classifier, fit a model's latent attribute directions",
    "download": "download CelebA's official files, verified and resumable",
    "prepare": "decode and crop a data source once into a .npy that training memory-maps",
}


def usage():
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {text}" for name, text in COMMANDS.items()]
    return "usage: dcgan-tf COMMAND [ARGS]   (dcgan-tf COMMAND --help for its flags)\n\ncommands:\n" + "\n".join(lines)


def entry_point(main):
    """For the functions a shell runs: when the reader of stdout goes away (`dcgan-tf --help | head`),
    exit quietly as other Unix tools do, not with a BrokenPipeError traceback."""
    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except BrokenPipeError:
            # Python flushes stdout again at exit; point it at /dev/null so that flush cannot fail too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
    return run


@entry_point
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.exit(f"dcgan-tf: error: unknown command {command!r}\n{usage()}")
    importlib.import_module(f"dcgan_tf.cli.{command}").main(rest, prog=f"dcgan-tf {command}")  # in usage and errors


if __name__ == "__main__":
    main()
