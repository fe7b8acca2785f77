"""scikit-learn's contract for MultiLabelModel and the parameter rules of ModelSpec / TrainConfig."""

import inspect
import json
from dataclasses import fields

import numpy as np
import pytest
from sklearn.base import clone

from comorbid import ModelSpec
from comorbid.constraints import ParameterError
from comorbid.model import FITTED_ATTRIBUTES, MultiLabelModel
from comorbid.spec import models_taking
from comorbid.training import TrainConfig
from test_model import coded_dataset, tiny_dataset


def test_the_spec_and_the_model_have_one_parameter_list():
    signature = inspect.signature(MultiLabelModel).parameters
    assert [field.name for field in fields(ModelSpec)] == list(signature)
    assert {field.name: field.default for field in fields(ModelSpec)} == {
        name: parameter.default for name, parameter in signature.items()}


def test_init_stores_and_fit_sets_the_fitted_attributes():
    options = {"loss": "focal"}
    model = MultiLabelModel("independent", head_options=options, nonempty="auto")
    assert model.head_options is options and model.get_params()["encoder"] == "auto"
    assert not any(name in vars(model) for name in FITTED_ATTRIBUTES)
    model.fit(tiny_dataset())
    assert all(name in vars(model) for name in FITTED_ATTRIBUTES)
    # fit leaves the parameters as given: "auto" stays "auto", the resolved values are fitted attributes
    assert model.get_params()["encoder"] == "auto" and model.encoder_.name == "clinical"
    assert model.get_params()["nonempty"] == "auto" and model.head_.nonempty is False
    copy = clone(model)
    assert copy.get_params() == model.get_params() and "head_" not in vars(copy)
    # the parameters are plain attributes (no alias reads a fitted attribute through them), and the
    # names from before the *_ attributes are gone
    assert model.encoder == "auto" and model.model == "independent" and model.encoder_name == "clinical"
    for old in ("head", "label_names", "feature_names", "train_config", "history", "calibration", "decoder_states",
                "training_fingerprint", "model_name"):
        assert not hasattr(model, old), old


def test_a_failed_refit_leaves_the_model_unfitted():
    model = MultiLabelModel("independent").fit(tiny_dataset())
    model.set_params(nonempty=True)
    with pytest.raises(ValueError, match="training rows have no label"):
        model.fit(tiny_dataset())
    assert "head_" not in vars(model)


@pytest.mark.parametrize("arguments, message", [
    ({"ensemble": 0}, "`ensemble` must be an integer >= 1, got 0"),
    ({"ensemble": 2.5}, "`ensemble` must be an integer >= 1, got 2.5"),
    ({"nonempty": "yes"}, "`nonempty` must be one of True, False, 'auto', got 'yes'"),
    ({"heldout_folds": 1}, "`heldout_folds` must be an integer >= 2, got 1"),
    ({"model": "forest"}, "Unknown model 'forest'"),
    ({"encoder": "bert"}, "Unknown encoder 'bert'"),
    ({"model": "bagging", "ensemble": 2}, "`ensemble` must be 1 for the bagging model"),
    ({"model": "chain", "head_options": {"loss": "focal"}}, "Bad option for the chain model: 'loss'"),
    ({"train": {"epochs": 0}}, "`train.epochs` must be > 0, got 0"),
    ({"train": {"weight_decay": -1.0}}, "`train.weight_decay` must be >= 0, got -1.0"),
    ({"train": {"balance": "log"}}, "`train.balance` must be one of 'none', 'sqrt', 'inverse', got 'log'"),
    ({"train": {"epoch": 3}}, "`train` must be keys among the TrainConfig fields"),
])
def test_spec_rules_name_the_field(arguments, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        ModelSpec(**arguments)
    with pytest.raises(ValueError):  # the model checks the same rules when it is fitted
        MultiLabelModel(**arguments).fit(tiny_dataset())


def test_spec_errors_carry_the_field_for_the_cli():
    with pytest.raises(ParameterError) as caught:
        ModelSpec(train={"learning_rate": 0})
    assert caught.value.name == "train.learning_rate"
    assert caught.value.describe("--learning-rate") == "--learning-rate must be > 0, got 0"
    assert models_taking("loss") == ["independent"]
    with pytest.raises(ParameterError, match="`validation_fraction` must be in"):
        TrainConfig(validation_fraction=1.0)


@pytest.mark.parametrize("argv, message", [
    (["--ensemble", "0"], "--ensemble must be an integer >= 1, got 0"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0, got -1.0"),
    (["--learning-rate", "0"], "--learning-rate must be > 0, got 0.0"),
    (["--head-option", "colour=blue"], "Bad option for the chain model: 'colour' (--head-option colour)"),
    (["--model", "chain", "--loss", "focal"], "--loss applies to the independent model only, not to 'chain'"),
])
def test_the_cli_names_its_flags(tiny_csv, capsys, argv, message):
    from comorbid.cli import main

    assert main(["cv", str(tiny_csv), *argv]) == 2
    assert message in capsys.readouterr().err


def test_cv_and_train_share_their_option_groups():
    from comorbid.cli import ModelFlags, ReadFlags, app
    from typer.main import get_command

    commands = get_command(app).commands
    shared = {field.name for group in (ModelFlags, ReadFlags) for field in fields(group)}
    for name in ("cv", "train"):
        assert shared <= {param.name for param in commands[name].params}, name


def test_every_command_reading_data_takes_the_read_flags_group():
    """One definition of the data-reading options: every command with a DATA argument takes
    ReadFlags, each option the same (flag, help text, default) as `cv`'s."""
    from comorbid.cli import ReadFlags, app
    from typer.main import get_command

    commands = get_command(app).commands
    reading = {field.name for field in fields(ReadFlags)}

    def options(command):
        return {param.name: (tuple(param.opts), param.help, param.default, param.metavar)
                for param in command.params if param.name in reading}

    readers = [name for name, command in commands.items()
               if any(param.name == "data" and param.param_type_name == "argument" for param in command.params)]
    assert {"cv", "train", "predict", "report", "evaluate", "inspect"} <= set(readers)
    for name in readers:
        assert options(commands[name]) == options(commands["cv"]), name
        assert set(options(commands[name])) == reading, name


def test_bagging_by_name_is_the_ensemble_route():
    """`model="bagging"` and `ensemble=K` train the same way: members on bootstrap samples."""
    data = coded_dataset()
    by_name = MultiLabelModel("bagging", head_options={"base": "independent", "members": 2}).fit(data)
    by_ensemble = MultiLabelModel("independent", ensemble=2).fit(data)
    assert len(by_name.history_["members"]) == 2
    np.testing.assert_array_equal(by_name.marginals(data), by_ensemble.marginals(data))


def test_a_model_saved_before_calibrate_was_a_key_loads(tmp_path):
    data = coded_dataset()
    trained = MultiLabelModel("independent", ensemble=2).fit(data)
    trained.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["calibrate"] is False and config["ensemble"] == 2
    del config["calibrate"], config["heldout_folds"]
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = MultiLabelModel.load(tmp_path / "m")
    params = loaded.get_params()
    assert (params["model"], params["encoder"], params["ensemble"], params["calibrate"], params["heldout_folds"],
            params["nonempty"], params["head_options"]) == ("independent", "clinical", 2, False, 3, True, {})
    assert params["train"] == trained.train_config_
    np.testing.assert_array_equal(loaded.marginals(data), trained.marginals(data))
    # a clone of a loaded ensemble is the same configuration, untrained
    assert clone(loaded).spec().head() == ("bagging", {"base": "independent", "members": 2, "base_options": {}})
