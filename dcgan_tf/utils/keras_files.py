"""What Keras' safe mode refuses in a .keras file, said in one line.

Loading with safe_mode=True refuses a Lambda layer: its function is Python code that would run
as the file loads. Inside a nested model Keras reports it only as "could not be deserialized",
which names neither the layer nor the way out. Here the archive's config.json is read as data
(nothing is deserialized) to find and name the Lambda layers.
"""

import json
import zipfile
import zlib

CONFIG_MEMBER = "config.json"
CONFIG_LIMIT = 2**26  # bytes of config.json read; a larger one is not a model's config


def lambda_layers(path):
    """The names of the Lambda layers in a .keras file's config, nested models included; [] if
    the config cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(CONFIG_MEMBER)
            if info.file_size > CONFIG_LIMIT:
                return []
            config = json.loads(archive.read(info))
    except (OSError, KeyError, ValueError, RecursionError, zipfile.BadZipFile, zlib.error):
        return []
    found, pending = [], [config]
    while pending:  # a loop, not recursion: a deeply nested config cannot exhaust the stack
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                layer = node.get("config")
                found.append(str(layer.get("name", "?")) if isinstance(layer, dict) else "?")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return sorted(found)


def safe_mode_refusal(path):
    """The one-line error for a .keras file that safe mode refuses for its Lambda layers, or None
    when it has none (the failure is something else)."""
    names = lambda_layers(path)
    if not names:
        return None
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{path} holds a Lambda layer ({shown}): Python code that would run as it loads, which Keras' safe "
            "mode refuses; save the model again with Keras' own layers instead of the Lambda, or, if you trust "
            "where it came from, load it yourself with keras.saving.load_model(path, safe_mode=False)")
