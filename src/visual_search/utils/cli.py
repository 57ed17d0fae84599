"""Entry-script plumbing: one-line errors for bad overrides, missing values and user errors.

Hydra reports a bad override as a multi-line message and an error inside a job as a traceback. The
entry scripts call `launch`, which first composes the config once with the command line's overrides
(the first value of each sweep) and turns any problem into one line naming the key and the allowed
choices; `run_task` then guards the job itself.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path, get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.errors import ConfigCompositionException, HydraException, InstantiationException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from visual_search.errors import UserError
from visual_search.utils.runtime import keep_freed_memory

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
CONF_DIR = ROOT / "conf"
# Flags after which Hydra composes nothing, so there is nothing to check.
NO_COMPOSE_FLAGS = ("help", "hydra_help", "shell_completion", "experimental_rerun", "info")
RUN_ID = "VISUAL_SEARCH_RUN_ID"  # environment: the id sweep jobs inherit from the command that launched them


def run_id() -> str:
    """A short random id, one per command (sweep jobs inherit it through the environment): beside the
    time it makes run folders unique for runs started in the same second (`${run_id:}` in conf/hydra)."""
    return os.environ.setdefault(RUN_ID, secrets.token_hex(3))


def approach_name(encoder: str, checkpoint: str | None) -> str:
    """A plain run's approach (experiments name their own): the encoder's, `_pretrained`, or
    `_finetuned` when it uses a training checkpoint."""
    return f"{encoder}_{'finetuned' if checkpoint else 'pretrained'}"


OmegaConf.register_new_resolver("run_id", run_id, replace=True)
OmegaConf.register_new_resolver("csv", lambda values: ",".join(values), replace=True)  # a list as a sweep
OmegaConf.register_new_resolver("approach_name", approach_name, replace=True)


def fail(message: str, code: int) -> NoReturn:
    """Print `error: <message>` on one line to stderr and exit."""
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    sys.exit(code)


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The config names of a group folder (e.g. 'encoder', 'dataset/split'); for Hydra's own groups
    (e.g. 'hydra/launcher') also those of its plugins (joblib, submitit_slurm, ...)."""
    if group.startswith("hydra/"):
        Plugins.instance()  # plugins register their configs when they load
        loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(conf_dir)))
        return sorted(loader.get_group_options(group))
    folder = conf_dir / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _check_group_choice(group: str, values: list[str], conf_dir: Path) -> None:
    options = group_options(group, conf_dir)
    for value in values:
        if value not in options and value != "null":
            raise UserError(f"{group}={value} is not a choice; {group} is one of: {', '.join(options)}")


def first_values(overrides: list[str], conf_dir: Path = CONF_DIR) -> list[str]:
    """Validate group choices (every sweep value) and return the overrides with each sweep reduced to
    its first value, ready for one composition. Hydra's own settings (hydra.*) are left out."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise UserError(str(e).splitlines()[0]) from e
    single = []
    for override in parsed:
        key = override.key_or_group
        values = (
            list(override.sweep_string_iterator())
            if override.is_sweep_override()
            else [override.get_value_element_as_str()]
        )
        if key.split("/")[0].split(".")[0] == "hydra":
            if key.startswith("hydra/") and not override.is_delete():  # e.g. hydra/launcher=joblib
                _check_group_choice(key, values, conf_dir)
            continue
        if (conf_dir / key).is_dir() and not override.is_delete():
            _check_group_choice(key, values, conf_dir)
        prefix = override.input_line.split("=", 1)[0]
        single.append(f"{prefix}={values[0]}" if override.is_sweep_override() else override.input_line)
    return single


def _valid_keys(cfg: DictConfig, full_key: str) -> str:
    """Keys next to an unknown `full_key`, to suggest in the error."""
    parent = full_key.rpartition(".")[0]
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return ", ".join(sorted(node.keys())) if isinstance(node, DictConfig) else ""


def _composition_error(e: Exception, config_name: str, conf_dir: Path) -> str:
    cause = e.__cause__
    message = str(e)
    key_match = re.search(r"Could not (?:override|append to|delete from config)\s+'([^']+)'", message)
    if key_match and cause is not None and "not in struct" in str(cause):
        key = key_match.group(1)
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            base = compose(config_name)
        choices = _valid_keys(base, key)
        return f"unknown key '{key}' (to add a new key use +{key}=...); keys there: {choices}"
    missing = re.search(r"Could not find '([^']+)'", message)
    if missing:
        group, _, value = missing.group(1).rpartition("/")
        return (
            f"{group}={value} is not a choice; {group} is one of: {', '.join(group_options(group, conf_dir))}"
        )
    detail = str(cause).splitlines()[0] if cause is not None else ""
    return f"{message.splitlines()[0]} {detail}".strip()


def missing_keys(node: DictConfig | ListConfig, prefix: str = "") -> list[str]:
    """Full keys of `???` values, without resolving interpolations (which may need a running Hydra)."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    found = []
    for key in keys:
        full_key = f"{prefix}.{key}" if prefix else str(key)
        if OmegaConf.is_missing(node, key):
            found.append(full_key)
        elif not OmegaConf.is_interpolation(node, key):
            child = node._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)):
                found.extend(missing_keys(child, full_key))
    return found


def check_config(config_name: str, overrides: list[str], conf_dir: Path = CONF_DIR) -> DictConfig:
    """Compose the config once as Hydra would; raise UserError (one line) for any bad override or
    missing required value."""
    single = first_values(overrides, conf_dir)
    try:
        with initialize_config_dir(str(conf_dir), version_base="1.3"):
            cfg = compose(config_name, overrides=single)
    except (ConfigCompositionException, OmegaConfBaseException) as e:
        raise UserError(_composition_error(e, config_name, conf_dir)) from e
    missing = missing_keys(cfg)
    if missing:
        raise UserError(
            f"missing required value '{missing[0]}'; set it on the command line: {missing[0]}=..."
        )
    return cfg


def launch(main: Callable[[], Any], config_name: str, conf_dir: Path = CONF_DIR) -> None:
    """Check the command line, tune the process for CPU inference, then run the `@hydra.main` function."""
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    args, _ = get_args_parser().parse_known_args(sys.argv[1:])
    if not any(getattr(args, flag, None) for flag in NO_COMPOSE_FLAGS):
        try:
            check_config(args.config_name or config_name, args.overrides, conf_dir)
        except UserError as e:
            fail(str(e), code=2)
    keep_freed_memory()
    main()


def user_error(e: BaseException) -> str | None:
    """The one-line message of an error the user can fix, or None for a bug (which keeps its traceback)."""
    if isinstance(e, UserError):
        return str(e)
    if isinstance(e, MissingMandatoryValue):
        return f"missing required value '{e.full_key}'; set it on the command line: {e.full_key}=..."
    if isinstance(e, FileNotFoundError):
        return f"file not found: {e.filename or e}"
    if isinstance(e, InstantiationException) and e.__cause__ is not None:
        cause = e.__cause__
        return user_error(cause) or (str(cause) if isinstance(cause, (ValueError, TypeError)) else None)
    return None


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run a job; a user error ends it with one line (exit 1) instead of a traceback."""
    try:
        return task(cfg)
    except Exception as e:
        message = user_error(e)
        if message is None:
            raise
        log.error(message)
        fail(message, code=1)
