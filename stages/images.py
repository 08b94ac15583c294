"""DVC stage ``images``: private (target, evaluator) and public (generator prior) images (Section 6)."""
from pipeline import images
from pipeline.io import write_json, write_npz
from pipeline.params import load_params
from pipeline.tracking import main, stage_run

DATASET, META = "data/images/dataset.npz", "data/images/meta.json"


def run() -> None:
    params = load_params()
    arrays, meta = images.load(params["images"], params["seed"])
    write_npz(DATASET, arrays)
    write_json(META, meta)
    with stage_run(params, "images", {"images": params["images"], "seed": params["seed"]}) as mlflow:
        mlflow.log_metrics({k: v for k, v in meta.items() if k.endswith("_count")})
    print(f"{meta['source']}: {meta['train_x_count']} private train, {meta['test_x_count']} private test, "
          f"{meta['public_x_count']} public images of shape {meta['shape']}")


if __name__ == "__main__":
    main(run)
