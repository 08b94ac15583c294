"""DVC stage ``train_gan``: the WGAN-GP generator prior on the public images (Section 6)."""
import torch

from pipeline.core.cli import execute
from pipeline.core.device import select
from pipeline.core.io import read_npz, save_state
from pipeline.core.metrics import write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting.plots import image_grid
from pipeline.vision import gan

DATASET, MODEL = "data/images/dataset.npz", "models/generator.pt"
SAMPLES, METRICS = "plots/gan_samples.png", "metrics/gan.json"


def run() -> None:
    params = load_params()
    torch.set_num_threads(1)  # small convolutions: one thread is about as fast, and never spins against other processes
    cfg = params["gan"]
    G, history = gan.train_gan(read_npz(DATASET)["public_x"], cfg, params["seed"],
                               device=select(params["compute"]["device"]))
    save_state(MODEL, G)
    samples = gan.samples(G, 64, cfg["z_dim"], params["seed"])
    image_grid(SAMPLES, samples.reshape(8, 8, *samples.shape[1:]), "Generator samples (public prior)")
    tree = write_metrics(METRICS, "gan", {"wasserstein": history[-1]["wasserstein"]})
    log_stage(params, "train_gan", {"gan": cfg, "seed": params["seed"]}, tree, artifacts=[SAMPLES],
              history=[(h["step"], {"wasserstein": h["wasserstein"]}) for h in history])
    print(f"generator: {cfg['steps']} steps, final Wasserstein estimate {history[-1]['wasserstein']:.3f}")


if __name__ == "__main__":
    execute(run)
