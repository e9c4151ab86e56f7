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
    with pytest.raises(ValueError, match="image_size must equal"):
        preset("keras64", image_size=36)  # not a multiple of 2**3 upsamplings
    with pytest.raises(ValueError, match="image_size must equal"):
        preset("keras64", image_size=64, g_start=4)


@pytest.mark.parametrize("change", [{"label_smoothing": 0.7}, {"batch_size": 0}, {"g_activation": "tanh"}])
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
