"""DVC stage ``images``: private (target, evaluator) and public (generator prior) images (Section 6)."""
from pipeline.core.cli import execute
from pipeline.core.io import write_json, write_npz
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.vision import images

DATASET, META = "data/images/dataset.npz", "data/images/meta.json"


def run() -> None:
    params = load_params()
    arrays, meta = images.load_images(params["images"], params["seed"])
    write_npz(DATASET, arrays)
    write_json(META, meta)
    log_stage(params, "images", {"images": params["images"], "seed": params["seed"]},
              {k: v for k, v in meta.items() if k.endswith("_count")})
    print(f"{meta['source']}: {meta['train_x_count']} private train, {meta['test_x_count']} private test, "
          f"{meta['public_x_count']} public images of shape {meta['shape']}")


if __name__ == "__main__":
    execute(run)
