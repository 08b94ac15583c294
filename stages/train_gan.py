"""DVC stage ``train_gan``: the WGAN-GP generator prior on the public images (Section 6)."""
import torch

from pipeline import gan
from pipeline.io import read_npz, save_state, write_json
from pipeline.params import load_params
from pipeline.plots import image_grid
from pipeline.tracking import main, stage_run

DATASET, MODEL = "data/images/dataset.npz", "models/generator.pt"
SAMPLES, METRICS = "plots/gan_samples.png", "metrics/gan.json"


def run() -> None:
    params = load_params()
    torch.set_num_threads(1)  # small convolutions: one thread is about as fast, and never spins against other processes
    cfg = params["gan"]
    a = read_npz(DATASET)
    G, history = gan.train(a["public_x"], cfg, params["seed"])
    save_state(MODEL, G)
    with torch.inference_mode():
        samples = G(torch.randn(64, cfg["z_dim"], generator=torch.Generator().manual_seed(params["seed"]))).numpy()
    image_grid(SAMPLES, samples.reshape(8, 8, *samples.shape[1:]), "Generator samples (public prior)")
    write_json(METRICS, {"wasserstein": history[-1]["wasserstein"]})
    with stage_run(params, "train_gan", {"gan": cfg, "seed": params["seed"]}) as mlflow:
        for h in history:
            mlflow.log_metric("wasserstein", h["wasserstein"], step=h["step"])
        mlflow.log_artifact(SAMPLES)
    print(f"generator: {cfg['steps']} steps, final Wasserstein estimate {history[-1]['wasserstein']:.3f}")


if __name__ == "__main__":
    main(run)
