"""Correctness: the TensorRT FP16 demo engine against ONNX Runtime CPU on the same frame.

The demo model ends in a top-K of corner scores, so FP16 rounding may reorder keypoints of
nearly equal score; rows are therefore not compared one to one. The criterion: of the
reference keypoints (ONNX Runtime, score > 0), at least `correctness_min_match` (0.9) have a
TensorRT keypoint within MATCH_RADIUS_PX, and the median relative score error of those
matches is at most `correctness_max_score_error` (0.05).
"""

from typing import Tuple

import numpy as np

from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import Session
from gps_denied_inference.selftest.targets import demo_targets, sample_inputs, Target

FAMILY = 'correctness'
MATCH_RADIUS_PX = 1.0


def run(session: Session, report: Report) -> None:
    """One line: TensorRT vs ONNX Runtime on the demo scene's first frame."""
    options = session.options
    criterion = 'TensorRT FP16 keypoints match ONNX Runtime CPU on the same frame'
    limit = (f'>= {options.correctness_min_match:.0%} matched within {MATCH_RADIUS_PX:g} px, '
             f'median score error <= {options.correctness_max_score_error:.0%}')
    reference, candidate = demo_targets(session)
    if not isinstance(reference, Target) or not isinstance(candidate, Target):
        missing = candidate if not isinstance(candidate, Target) else reference
        report.unavailable(FAMILY, 'fp16-vs-onnxruntime', criterion, missing[1], limit)
        return
    expected = _outputs(reference, session)
    found = _outputs(candidate, session)
    match, error, count = compare_keypoints(expected['keypoints'], found['keypoints'])
    ok = (count > 0 and match >= options.correctness_min_match
          and error <= options.correctness_max_score_error)
    report.verdict(ok, FAMILY, 'fp16-vs-onnxruntime', criterion,
                   f'{match:.1%} of {count} matched, median score error {error:.2%}', limit,
                   'no reference keypoints on the frame' if count == 0
                   else 'TensorRT disagrees with ONNX Runtime beyond the tolerance')


def _outputs(target: Target, session: Session) -> dict:
    runtime = target.make_runtime()
    handle = target.load(runtime)
    try:
        runtime.prepare_execution(handle)
        return runtime.infer(handle, sample_inputs(handle.manifest, session))
    finally:
        runtime.release_engine(handle)


def compare_keypoints(expected: np.ndarray, found: np.ndarray,
                      radius: float = MATCH_RADIUS_PX) -> Tuple[float, float, int]:
    """(matched fraction, median relative score error, reference count) of two keypoint lists.

    Each is [.., K, 3] rows (x, y, score); zero-score rows are padding. A reference keypoint
    matches the nearest candidate within `radius` pixels.
    """
    reference = np.asarray(expected, dtype=np.float64).reshape(-1, 3)
    candidate = np.asarray(found, dtype=np.float64).reshape(-1, 3)
    reference = reference[reference[:, 2] > 0]
    candidate = candidate[candidate[:, 2] > 0]
    if len(reference) == 0:
        return 0.0, 0.0, 0
    if len(candidate) == 0:
        return 0.0, float('inf'), len(reference)
    distances = np.linalg.norm(reference[:, None, :2] - candidate[None, :, :2], axis=2)
    nearest = distances.argmin(axis=1)
    matched = distances[np.arange(len(reference)), nearest] <= radius
    if not matched.any():
        return 0.0, float('inf'), len(reference)
    scores = reference[matched, 2]
    errors = np.abs(candidate[nearest[matched], 2] - scores) / scores
    return float(matched.mean()), float(np.median(errors)), len(reference)
