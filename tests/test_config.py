import json

import pytest

from dcgan_tf.config import PRESETS, Config, preset


@pytest.mark.parametrize("name", PRESETS)
def test_presets_are_consistent(name):
    cfg = PRESETS[name]
    assert cfg.output_size() == cfg.image_size
    assert cfg.preset == name


def test_design_card_and_udacity_presets():
    keras64, dcgan32 = PRESETS["keras64"], PRESETS["dcgan32"]
    assert (keras64.image_size, keras64.latent_dim) == (64, 128)
    assert [keras64.conv_dim * m for m in keras64.g_mult] == [128, 256, 512]
    assert [keras64.conv_dim * m for m in keras64.d_mult] == [64, 128, 128]
    assert (dcgan32.image_size, dcgan32.latent_dim, dcgan32.conv_dim) == (32, 100, 64)
    assert len(dcgan32.d_mult) == 4
    assert (keras64.lr, keras64.beta1) == (2e-4, 0.5)


def test_json_round_trip(tmp_path):
    cfg = preset("dcgan32", conv_dim=128, label_smoothing=0.1, data="faces.zip")
    cfg.save(tmp_path)
    assert Config.load(tmp_path) == cfg
    assert Config.load(tmp_path / "dcgan_config.json").g_mult == (4, 2, 1)


def test_another_image_size_scales_the_starting_grid():
    assert preset("dcgan32", image_size=64).g_start == 4
    assert preset("keras64", image_size=128).g_start == 16
    assert preset("keras64", image_size=32).output_size() == 32


def test_inconsistent_sizes_are_rejected():
    with pytest.raises(ValueError, match=r"the size must be a positive multiple of 8 \(e.g. 16, 32, 64\)"):
        preset("keras64", image_size=36)  # not a multiple of 2**3 upsamplings
    with pytest.raises(ValueError, match="image_size must equal"):
        preset("keras64", image_size=64, g_start=4)


def test_d_lr_none_follows_lr_and_an_old_config_s_zero_still_means_that(tmp_path):
    assert preset("tiny", lr=1e-4).discriminator_lr == 1e-4
    assert preset("tiny", lr=1e-4, d_lr=3e-4).discriminator_lr == 3e-4
    legacy = {**preset("tiny").to_dict(), "d_lr": 0.0, "lr": 1e-4}  # as runs saved before d_lr could be None
    (tmp_path / "dcgan_config.json").write_text(json.dumps(legacy))
    assert (Config.load(tmp_path).d_lr, Config.load(tmp_path).discriminator_lr) == (None, 1e-4)
    with pytest.raises(ValueError, match="d_lr must be a number, got 'fast'"):
        Config.from_dict({**legacy, "d_lr": "fast"})


@pytest.mark.parametrize("change", [{"label_smoothing": 0.7}, {"batch_size": 0}, {"g_activation": "tanh"}, {"d_lr": -1e-4}])
def test_bad_values_are_rejected(change):
    with pytest.raises(ValueError, match="invalid config"):
        preset("tiny", **change)


def test_unknown_keys_and_presets_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown config keys: colour"):
        Config.from_dict({**Config().to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(FileNotFoundError, match="no dcgan_config.json"):
        Config.load(tmp_path)


def test_configs_loss_names_are_those_the_losses_module_implements():
    from dcgan_tf import config
    from dcgan_tf.model import losses
    assert config.LOSSES == tuple(losses.LOSSES)


def test_dcgan64_is_dcgan32_one_size_up_the_pytorch_examples_layout():
    dcgan64 = PRESETS["dcgan64"]
    assert dcgan64 == preset("dcgan32", image_size=64).replace(preset="dcgan64")
    assert (dcgan64.latent_dim, dcgan64.batch_size, dcgan64.g_start, dcgan64.lr, dcgan64.beta1) == (100, 64, 4, 2e-4, 0.5)
    assert [dcgan64.conv_dim * m for m in (dcgan64.g_dense_mult, *dcgan64.g_mult)] == [512, 256, 128, 64]
    assert [dcgan64.conv_dim * m for m in dcgan64.d_mult] == [64, 128, 256, 512]


# --- crafted config.json and image sizes (issue 33, cases 16 and 21) -----------------------

FIX = "fix the file (python train.py --help lists the fields)"


@pytest.mark.parametrize("text, problem", [
    ("[" * 100_000, "JSON nested too deeply for a config"),
    ('{"a":' * 100_000, "JSON nested too deeply for a config"),
    ("[1]", "expected a JSON object of config fields"),
    ('{"lr": NaN}', "NaN is not a finite number"),
    ('{"lr": 1e999}', "1e999 is not a finite number"),
    ('{"epochs": ' + "9" * 5000 + "}", "an integer of 5,000 digits"),
    ('{"' + "k" * 100_000 + '": 1}', "unknown config keys: " + "k" * 40),
    ('{"image_size": "' + "x" * 10_000 + '"}', "invalid config (keras64): image_size must be an integer, got '"
                                              + "x" * 79),
    (" " * (2**20 + 1), f"{2**20 + 1:,} bytes, more than a config's {2**20:,}"),
], ids=["deep-list", "deep-object", "list", "nan", "inf", "5000-digits", "long-key", "long-value", "huge"])
def test_a_crafted_config_json_is_one_line(tmp_path, text, problem):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError) as error:
        Config.load(tmp_path)
    assert str(error.value) == f"{tmp_path / 'config.json'}: {problem}; {FIX}"


def test_a_config_json_with_a_byte_order_mark_loads(tmp_path):
    (tmp_path / "config.json").write_text("\ufeff" + json.dumps(preset("tiny").to_dict()), encoding="utf-8")
    assert Config.load(tmp_path) == preset("tiny")


@pytest.mark.parametrize("size", [0, -4, 12])
def test_an_impossible_image_size_is_refused_before_the_data_is_read(tmp_path, capsys, size):
    """train.py (a subprocess), attributes train and evaluate name --image-size, not the missing data."""
    from test_train_cli import run_train

    from dcgan_tf.cli import attributes, evaluate
    result = run_train("--preset", "keras64", "--image-size", size, "--data", "missing.zip", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"train.py: error: image_size (--image-size) {size}: the keras64 preset's generator grows its start grid "
        "8x, so the size must be a positive multiple of 8 (e.g. 16, 32, 64)")
    with pytest.raises(SystemExit) as exit:
        attributes.main(["train", "--data", "missing.zip", "--attrs", "missing.txt", "--out", "c.keras",
                         "--image-size", str(size)])
    assert exit.value.code == (f"dcgan-tf attributes: error: --image-size {size}: the classifier needs an image size of "
                               "4 * 2**k >= 8 (8, 16, 32, 64, 128 ...), the generator's resolution")
    if size < 4:
        with pytest.raises(SystemExit) as exit:
            evaluate.main(["--model", "missing", "--image-size", str(size)])
        assert exit.value.code == 2
        assert capsys.readouterr().err.strip().endswith(f"--image-size must be at least 4, got {size} (see --help)")


def test_a_config_saved_under_the_old_name_is_read_and_replaced_on_saving(tmp_path):
    cfg = preset("tiny", epochs=3)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))  # a run made before the rename
    assert Config.load(tmp_path) == cfg
    cfg.replace(epochs=4).save(tmp_path)  # a resume rewrites it under the new name, leaving one config
    assert [p.name for p in tmp_path.iterdir()] == ["dcgan_config.json"] and Config.load(tmp_path).epochs == 4


def test_a_keras_config_in_the_configs_place_is_named_as_such(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"module": "keras", "class_name": "Sequential", "config": {}}))
    with pytest.raises(ValueError, match=r"config.json: this is a Keras model's config, not a dcgan-tf run's"):
        Config.load(tmp_path)
