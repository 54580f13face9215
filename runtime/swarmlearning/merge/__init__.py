"""Merging models: weighted mean, weighted coordinate-wise median, weighted geometric median.

Pure computation: no files, no network (debug lines go to the `logging` module only). A model is
a Mapping of tensor name to numpy array; the merge reads `models[i][name]` one name at a time,
so lazy Mappings (each `__getitem__` loading one tensor) keep about one layer of every model in
memory, plus the result.

    merge(method, models, weights, *, backend="auto", layerwise=None) -> dict[str, ndarray]
    robust_merge(method, models, weights, *, outlier_factor=4.0, backend="auto",
                 layerwise=None) -> (dict[str, ndarray], [(index, reason)] of models left out)
    screen(models) -> (good indices, [(index, reason)] of rejected models)

Methods (`method` is case-insensitive; METHODS lists them):

- mean: sum_i w_i x_i / sum_i w_i.
- coordmedian: per coordinate, the values in ascending order with their models' weights; the
  result is the value at which the cumulative weight first reaches half the total weight. When
  it lands exactly on half, the result is the mean of that value and the next one, so equal
  weights give numpy's median (the mean of the two middle values for an even count). "Exactly"
  allows for float64 rounding: within 4 * n * eps * total for n models (integer weights, such as
  nodeWeightage, are always exact).
- geomedian: the point z minimising sum_i w_i ||x_i - z||, the distance taken over all float
  tensors concatenated (one distance per model). Smoothed Weiszfeld from the weighted mean:
  z <- sum_i c_i x_i / sum_i c_i with c_i = w_i / max(||x_i - z||, eps), where eps is 1e-8 times
  the weighted mean distance of the models from the starting mean. It stops when the objective
  changes by less than 1e-6 of itself, or after 100 steps.

Far outliers (`robust_merge`, what the SL leader runs): coordmedian and geomedian leave out the
models farther from their result than outlier_factor times the median distance, and merge the
rest again (swarmlearning.merge.outliers says why and how). `merge` leaves nothing out.

Weights: one per model, finite and >= 0, not all zero. A model with weight 0 takes no part in
the arithmetic, but it is checked like the others.

Checks (MergeError, a ValueError, with `peer` = the index of the model at fault, or None): the
same tensor names in every model, and per name the same shape and dtype. The reference is what
most models have (on a tie, the lowest-numbered model's), so the odd one out is blamed, for
example "peer 2: tensor 'fc.weight' has shape (10, 5); the others have (10, 4)". A float tensor
with NaN or Inf is an error too. float16, float32 and float64 tensors are merged (computed in
float32, float32 and float64, returned in their own dtype); integer and bool tensors are copied
from the model with the highest weight (the first of equals); other dtypes are an error.

backend: "numpy", "torch" (PyTorch on the numpy memory, zero-copy) or "auto": torch for
tensors of at least 65536 elements when it can be imported, numpy otherwise. The coordinate-wise
median runs on numpy under "auto" (a min/max sorting network, faster here than torch.sort);
"torch" makes it use torch.sort.

layerwise (geomedian only; mean and coordmedian always go one layer at a time): every
Weiszfeld step needs every tensor again. With layerwise=False the tensors of all models are kept
from the first read (fast; RAM intensive for lazy models); with True each step reads them again
from the Mappings, one layer at a time. None means False when every model is a plain dict (its
tensors are in memory anyway) and True otherwise. Both give the same result.
"""

from swarmlearning.merge.checks import MergeError, screen
from swarmlearning.merge.methods import BACKENDS, METHODS, merge, robust_merge
from swarmlearning.merge.outliers import DEFAULT_OUTLIER_FACTOR

__all__ = ["BACKENDS", "DEFAULT_OUTLIER_FACTOR", "METHODS", "MergeError", "merge",
           "robust_merge", "screen"]
