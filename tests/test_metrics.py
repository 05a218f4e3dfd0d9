import numpy as np
import pytest
import torch

from dgsp import metrics


def test_reconstruction_errors():
    x = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    x_hat = torch.tensor([[0.5, 1.0], [1.0, 0.0]])
    assert metrics.reconstruction_mse(x, x_hat) == pytest.approx((0.25 + 1.0) / 2)
    p = torch.full((2, 2), 0.5)
    assert metrics.reconstruction_bce(x, p) == pytest.approx(2 * np.log(2), rel=1e-4)
    with pytest.raises(ValueError, match="shape"):
        metrics.reconstruction_mse(x, x_hat[:1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.reconstruction_bce(x * 3, p)


def test_principal_angles():
    e = torch.eye(3)
    assert np.allclose(metrics.principal_angles(e[:, :2], e[:, :2]), 0, atol=1e-6)
    assert np.allclose(metrics.principal_angles(e[:, :1], e[:, 1:2]), 90)
    t = np.radians(30)
    rotated = torch.tensor([[np.cos(t)], [np.sin(t)], [0.0]])
    assert metrics.principal_angles(e[:, :1], rotated) == pytest.approx([30.0])
    # a basis change inside the subspace does not matter
    mixed = e[:, :2] @ torch.tensor([[2.0, 1.0], [0.5, -3.0]])
    assert np.allclose(metrics.principal_angles(e[:, :2], mixed), 0, atol=1e-6)
    with pytest.raises(ValueError, match="same d"):
        metrics.principal_angles(torch.zeros(3, 2), torch.zeros(4, 2))


def test_map_batches_and_knn():
    x = torch.arange(10.0).view(-1, 1)
    assert torch.equal(metrics.map_batches(lambda b: 2 * b, x, batch_size=3), 2 * x)
    feats = torch.cat([torch.randn(50, 2) - 5, torch.randn(50, 2) + 5])
    labels = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    assert metrics.knn_accuracy(feats, labels, feats + 0.01, labels) == 1.0


@pytest.mark.parametrize("name,call,message", [
    ("reconstruction_mse", lambda: metrics.reconstruction_mse(torch.zeros(0, 4), torch.zeros(0, 4)),
     "at least one image"),
    ("reconstruction_bce", lambda: metrics.reconstruction_bce(torch.zeros(0, 4), torch.zeros(0, 4)),
     "at least one image"),
    ("median_bandwidth", lambda: metrics.median_bandwidth(torch.zeros(0, 2), torch.zeros(1, 2)), "at least two points"),
    ("reference_bandwidth", lambda: metrics.reference_bandwidth(torch.zeros(1, 2)), "at least two points"),
    ("principal_angles", lambda: metrics.principal_angles(torch.zeros(5, 0), torch.zeros(5, 0)), "d, k >= 1"),
    ("mode_coverage, no samples", lambda: metrics.mode_coverage(torch.zeros(0, 2), torch.zeros(3, 2), 0.1),
     "one sample and one mode"),
    ("mode_coverage, no modes", lambda: metrics.mode_coverage(torch.zeros(4, 2), torch.zeros(0, 2), 0.1),
     "one sample and one mode"),
    ("map_batches, batch 0", lambda: metrics.map_batches(lambda t: t, torch.zeros(3, 2), batch_size=0), "whole number"),
    ("map_batches, empty", lambda: metrics.map_batches(lambda t: t, torch.zeros(0, 2)), "empty batch"),
])
def test_empty_inputs_are_a_clear_error(name, call, message):
    """Empty inputs used to give NaN (mse, the bandwidths), zero coverage or a raw torch error."""
    with pytest.raises(ValueError, match=message):
        call()


def test_classifier_accuracy_counts_agreeing_labels_and_refuses_bad_input():
    """The share of images given the stated label, checked against the classifier's own argmax."""
    torch.manual_seed(0)
    clf = metrics.DigitClassifier().eval()
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        pred = clf(x).argmax(1)
    assert metrics.classifier_accuracy(clf, x, pred) == 1.0
    assert metrics.classifier_accuracy(clf, x, (pred + 1) % 10) == 0.0
    half = torch.where(torch.arange(6) < 3, pred, (pred + 1) % 10)
    assert metrics.classifier_accuracy(clf, x, half) == 0.5
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        metrics.classifier_accuracy(clf, x.flatten(1), pred)
    with pytest.raises(ValueError, match="labels of shape"):
        metrics.classifier_accuracy(clf, x, pred[:5])
    with pytest.raises(ValueError, match="at least one image"):
        metrics.classifier_accuracy(clf, x[:0], pred[:0])
