"""Fine-tune an encoder: `python train.py experiment=<approach>`."""

import hydra
from omegaconf import DictConfig

from visual_search.utils import cli


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> dict | None:
    from visual_search.tasks.train import train

    return cli.run_task(train, cfg)


if __name__ == "__main__":
    cli.launch(main, config_name="train")
