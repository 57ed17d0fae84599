"""Fine-tune an encoder: `python train.py experiment=<approach>`; search hyperparameters with
`python train.py hparams_search=<search>`."""

import hydra
from omegaconf import DictConfig

from visual_search.utils import cli


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | dict | None:
    from visual_search.tasks.train import train_and_score

    return cli.run_task(train_and_score, cfg)


if __name__ == "__main__":
    cli.launch(main, config_name="train")
