"""Serve the best checkpoint over HTTP: `python serve.py server.port=8000`."""

import hydra
from omegaconf import DictConfig

from visual_search.utils import cli


@hydra.main(version_base="1.3", config_path="conf", config_name="serve")
def main(cfg: DictConfig) -> None:
    from visual_search.tasks.serve import serve

    return cli.run_task(serve, cfg)


if __name__ == "__main__":
    cli.launch(main, config_name="serve")
