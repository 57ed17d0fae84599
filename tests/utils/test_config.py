"""Config tree: every group option and experiment composes, every _target_ exists, and bad command
lines end with one line naming the key and the choices."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from tests.conftest import ROOT, run_script
from visual_search.errors import UserError
from visual_search.utils.cli import CONF_DIR, check_config, group_options, missing_keys

PRIMARY = ("evaluate", "train", "serve")
GROUPS = ("dataset", "dataset/split", "encoder", "detector", "index", "index/reduction", "evaluation")
GROUPS += ("model", "loss", "trainer", "callbacks", "logger", "paths")
TRAIN_GROUPS = ("model", "loss", "trainer", "callbacks")
ENCODERS = "clip, clip_effl0_minilm, efficientnet_lite0, resnet50"
# Which primary config each experiment / debug config is meant for (every file must be listed).
EXPERIMENTS = {
    "evaluate": ["resnet50_pretrained", "clip_pretrained", "efficientnet_lite0_pretrained", "detector_crop"],
    "train": ["resnet50_finetune", "clip_finetune", "efficientnet_lite0_finetune"],
}
DEBUG = {"evaluate": ["tiny"], "train": ["tiny", "fdr", "overfit"]}
REQUIRED = {
    "dataset=polyvore": "dataset.root=/data/polyvore_outfits",
    "dataset=catalog": "dataset.path=c.csv",
}


def compose_cfg(config_name: str, overrides: list[str], hydra: bool = False) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=hydra)


def targets(node, found: list[str]) -> list[str]:
    """All _target_ strings in a config tree (without resolving interpolations)."""
    if isinstance(node, DictConfig):
        for key in node:
            if key == "_target_":
                found.append(node[key])
            elif not OmegaConf.is_interpolation(node, key):
                targets(node._get_node(key), found)
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            if not OmegaConf.is_interpolation(node, index):
                targets(node._get_node(index), found)
    return found


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_option_composes_and_its_targets_exist(group: str):
    options = group_options(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        override = f"{group}={option}"
        name = "train" if group in TRAIN_GROUPS else "evaluate"
        cfg = compose_cfg(name, [override, *[v for k, v in REQUIRED.items() if k == override]])
        assert not missing_keys(cfg), f"{override} leaves required values unset"
        for target in targets(cfg, []):
            assert callable(get_object(target)), f"{override}: {target} is not importable"


def test_every_experiment_and_debug_config_is_covered_and_composes():
    assert sorted(e for names in EXPERIMENTS.values() for e in names) == group_options("experiment")
    assert {d for names in DEBUG.values() for d in names} == set(group_options("debug"))
    for name, experiments in EXPERIMENTS.items():
        for experiment in experiments:
            cfg = compose_cfg(name, [f"experiment={experiment}"])
            if name == "evaluate":
                assert cfg.approach == experiment
            else:  # fine-tuned approaches are named by encoder and loss (so loss sweeps stay apart)
                assert (
                    cfg._get_node("approach")._value()
                    == "${hydra:runtime.choices.encoder}_finetune_${hydra:runtime.choices.loss}"
                )
            for target in targets(cfg, []):
                get_object(target)
    for name, debugs in DEBUG.items():
        for debug in debugs:
            cfg = compose_cfg(name, [f"debug={debug}"])
            assert cfg.dataset.root.spec.num_categories == 4


@pytest.mark.parametrize("search", group_options("hparams_search"))
def test_every_search_space_names_keys_and_groups_that_exist(search: str):
    """A misspelt key in a search space would only fail once the sweep starts (or silently add a key)."""
    cfg = compose_cfg("train", [f"hparams_search={search}"], hydra=True)
    params = cfg.hydra.sweeper.params
    assert params and cfg.hydra.sweeper.n_trials >= 1
    absent = object()
    for key in params:
        assert group_options(key) or OmegaConf.select(cfg, key, default=absent) is not absent, key


def test_primary_configs_read_like_a_table_of_contents():
    for name in PRIMARY:
        defaults = OmegaConf.load(CONF_DIR / f"{name}.yaml")["defaults"]
        groups = [next(iter(d)) for d in defaults if isinstance(d, DictConfig)]
        assert {"paths", "hydra", "dataset", "encoder", "experiment", "debug"} <= set(groups)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["encoder=foo"],
            "encoder=foo is not a choice; encoder is one of: " + ENCODERS,
        ),
        (["index.nlsit=3"], "unknown key 'index.nlsit'.*keys there: .*nlist"),
        (["dataset=catalog"], "missing required value 'dataset.path'"),
        (["experiment=resnet50_pretrained,nope"], "experiment=nope is not a choice"),
        (["dataset/split=bogus"], "dataset/split is one of: column, outfits, seed"),
        (["k=[1"], "no viable alternative"),
    ],
)
def test_bad_command_lines_are_one_clear_line(overrides: list[str], message: str):
    with pytest.raises(UserError, match=message):
        check_config("evaluate", overrides)


def test_sweeps_and_hydra_overrides_pass_the_check():
    cfg = check_config(
        "evaluate", ["experiment=resnet50_pretrained,clip_pretrained", "hydra.job.chdir=false"]
    )
    assert cfg.approach == "resnet50_pretrained"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["encoder=foo"],
            2,
            "error: encoder=foo is not a choice; encoder is one of: " + ENCODERS,
        ),
        (["dataset=polyvore"], 2, "error: missing required value 'dataset.root'"),
        (
            ["dataset=polyvore", "dataset.root=/nonexistent/polyvore"],
            1,
            "error: polyvore: /nonexistent/polyvore/",
        ),
        (
            ["dataset=catalog", "dataset.path=/nonexistent.csv"],
            1,
            "error: catalogue CSV not found: /nonexistent.csv",
        ),
    ],
)
def test_entry_script_errors_are_one_line_without_traceback(
    tmp_path: Path, args: list[str], code: int, message: str
):
    result = run_script("evaluate.py", *args, f"paths.log_dir={tmp_path}", timeout=120)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_conf_dir_is_the_repository_conf():
    assert Path(CONF_DIR) == ROOT / "conf"
