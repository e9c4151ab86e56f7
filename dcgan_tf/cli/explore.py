"""The face explorer: a page in your browser to go through faces by seed, walk between two,
turn attribute dials and save a face with the generate.py command that makes it again.

  dcgan-tf explore saved_models/NAME               serves http://127.0.0.1:8470/
  dcgan-tf explore runs/NAME --port 9000 --open    and opens it in a browser

MODEL is what generate.py takes: a run directory, a checkpoint, an export directory, a
SavedModel or a .keras file. A directions.npz beside it (attribute name -> latent direction)
gives the page one dial per attribute. The page is plain HTML, CSS and JavaScript shipped in
dcgan_tf/explore/static/; it loads nothing from anywhere else.

The API answers GET requests whose values are all query parameters; every answer is made in
memory (no request names, reads or writes a file) and a bad value gets 400 and one line:
  /api/model                        latent size, image size, attribute names and the limits
  /api/page?start=S&count=N         the faces of seeds S..S+N-1, as base64 PNGs in JSON
  /api/face.png?seed=A              one face; with &to=B&step=K&steps=N, frame K of the walk A -> B
  /api/save?seed=A...               that face as PNG and .npy (base64) and the generate.py command
Each takes &truncation=PSI and &dials=Smiling:1.5,Male:-1 too. Faces are made one request at a
time; a few more requests wait their turn and any beyond those get 503. Any other method gets
405, and a request whose Host is not this machine's (a loopback name, an IP address or --host)
gets 403: a web page elsewhere cannot reach the explorer by pointing its own name here (DNS
rebinding).
"""

import sys
import webbrowser
from pathlib import Path

from dcgan_tf.cli.flags import ArgumentParser
from dcgan_tf.explore.server import DEFAULT_PORT, PORTS_TRIED, Explorer, is_loopback, serve


def main(argv=None, prog="dcgan-tf explore"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("model", type=Path,
                        help="run directory, checkpoint, export directory, SavedModel or .keras file")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to serve on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; the next free one if taken; 0: any free port)")
    parser.add_argument("--open", action="store_true", help="open the page in your web browser")
    parser.add_argument("--log", action="store_true", help="print every request")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535 - PORTS_TRIED:
        parser.error(f"--port must be from 0 to {65535 - PORTS_TRIED}, got {args.port}")
    if not is_loopback(args.host):
        print(f"{prog}: warning: serving on {args.host}: anyone who can reach this machine there can use "
              "the explorer (it reads and writes no files, but uses this CPU)", file=sys.stderr)

    try:
        explorer = Explorer.load(args.model)
        server = serve(explorer, args.host, args.port, args.log)
    except (ValueError, FileNotFoundError, OSError) as error:
        sys.exit(f"{prog}: error: {error}")
    attributes = f", dials: {', '.join(explorer.directions)}" if explorer.directions else ""
    print(f"Face explorer for {args.model} ({explorer.image_size} px{attributes}) at {server.url}  "
          "(Ctrl-C stops it)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        explorer.stop()
        server.server_close()


if __name__ == "__main__":
    main()
