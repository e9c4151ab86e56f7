"""Write a trained model in the forms other tools run, each checked against the SavedModel.

  dcgan-tf export saved_models/celeba64 --format tflite --format onnx
  dcgan-tf export runs/NAME --format keras --out exports/mine --weights float16

MODEL is anything generate.py takes except a bare SavedModel: a run directory, a checkpoint,
an export directory or a .keras file. Under --out (default exports/NAME):

  1/                  savedmodel: the export (SavedModel, generator.keras, config), always
                      written: tensorflow_model_server --model_base_path=OUT serves it as version 1
  generator.keras     keras: loads with keras.saving.load_model alone and computes in float32
  generator.tflite    tflite: serving_default through tf.lite.TFLiteConverter
  generator.onnx      onnx: serving_default through tf2onnx (pip install 'dcgan-tf[onnx]')
  web/                web: a static page that makes faces in the browser from generator.onnx
                      (serve it: python -m http.server -d OUT/web); needs `npm install
                      onnxruntime-web` where you export from, or --ort-dir

The one signature, serving_default, maps z float32 [N, latent_dim] (standard normal) to
images uint8 [N, H, W, 3]; a conditional model's also takes attributes float32 [N, count].
Each form is run after writing on fixed latents and compared with the SavedModel (the
SavedModel with the Keras generator): its size and the largest and mean difference are
printed, and a form more than one level of 255 off anywhere fails and is not written.
"""

import sys
from pathlib import Path

from dcgan_tf.cli.flags import ArgumentParser
from dcgan_tf.config import EXPORT_FORMATS, WEIGHT_DTYPES


def parse_args(argv=None, prog="dcgan-tf export"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("model", type=Path, help="run directory, checkpoint, export directory or .keras file")
    parser.add_argument("--format", dest="formats", action="append", choices=EXPORT_FORMATS,
                        help="a form to write (repeat for several; default savedmodel, which is always written)")
    parser.add_argument("--out", type=Path, help="the folder to write to (default exports/NAME)")
    parser.add_argument("--weights", choices=WEIGHT_DTYPES, default="float32",
                        help="precision the SavedModel and generator.keras store the weights in; float16 "
                        "halves them and still computes in float32 (default float32)")
    parser.add_argument("--ort-dir", type=Path, help="web: onnxruntime-web's dist folder (default "
                        "./node_modules/onnxruntime-web/dist, where npm install puts it)")
    return parser.parse_args(argv)


def main(argv=None, prog="dcgan-tf export"):
    args = parse_args(argv, prog)
    from dcgan_tf.serve import convert, loader
    out = args.out or Path("exports") / loader.export_name(args.model)
    try:
        ort_dir = args.ort_dir or convert.web.ORT_DIR
        for artefact in convert.export_forms(args.model, args.formats or ["savedmodel"], out, args.weights, ort_dir):
            print(artefact.report(), flush=True)
    except (ValueError, FileNotFoundError, OSError) as error:
        sys.exit(f"{prog}: error: {error}")


if __name__ == "__main__":
    main()
