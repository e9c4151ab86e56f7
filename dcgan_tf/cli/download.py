"""Download CelebA's official files, verified, resumable:

  dcgan-tf download celeba                       # into ~/.cache/dcgan_tf/celeba
  dcgan-tf download celeba --to ~/data/celeba --mirror https://example.org/celeba/
  python train.py --preset dcgan32 --data celeba

Fetches img_align_celeba.zip (1.3 GiB), list_attr_celeba.txt and list_eval_partition.txt,
the files (same Google Drive ids, same checksums) that torchvision's and TensorFlow
Datasets' CelebA loaders use. Each file is written to a hidden partial file that a later
run resumes (HTTP Range), checked against its size, SHA-256 and MD5, and only then renamed
into place; one process at a time writes a file (a second one into the same --to is refused),
and no more than the file's size is written, whatever the server sends. Only http(s) links
are followed, and a connection slower than a minimum rate counts as lost. Sources are tried in order until one delivers the right bytes: each --mirror
(a URL under which the files are found by name), Google Drive (following its large-file
confirmation page; its quota-exceeded and access-denied pages are reported, never saved),
then --kaggle OWNER/DATASET through the kaggle client when it and its credentials are
present. CelebA is for non-commercial research only: see its page before downloading.
"""

import sys
from pathlib import Path

from dcgan_tf.cli.flags import ArgumentParser
from dcgan_tf.data import download, hosts
from dcgan_tf.utils.locks import InUse


def main(argv=None, prog="dcgan-tf download"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("dataset", choices=["celeba"], help="the dataset to download")
    parser.add_argument("--to", type=Path, default=download.DEFAULT_DIR, metavar="DIR",
                        help=f"folder for the files (default {download.DEFAULT_DIR})")
    parser.add_argument("--mirror", action="append", default=[], metavar="URL",
                        help="a URL under which the files are found by name; tried before Google Drive (repeatable)")
    parser.add_argument("--kaggle", metavar="OWNER/DATASET",
                        help="a Kaggle dataset that holds the files by name; tried last, with the kaggle client")
    args = parser.parse_args(argv)
    try:
        sources = [hosts.mirror(url) for url in args.mirror] + [hosts.google_drive(hosts.DRIVE_URL)]
        sources += [hosts.KaggleSource(args.kaggle)] if args.kaggle else []
        paths = download.download(download.CELEBA, args.to, sources)
    except (download.DownloadError, ValueError, InUse) as error:
        sys.exit(f"{prog}: error: {error}")
    except KeyboardInterrupt:
        hosts.say(f"{prog}: interrupted; run the same command again to resume")
        sys.exit(130)
    for path in paths:
        print(path)
    flag = "celeba" if args.to.expanduser().resolve() == download.DEFAULT_DIR.resolve() else args.to / download.IMAGES
    hosts.say(f"train on it: python train.py --preset dcgan32 --data {flag}")


if __name__ == "__main__":
    main()
