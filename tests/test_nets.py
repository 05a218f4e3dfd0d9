import pytest
import torch

from dgsp import nets


def test_mlp_shapes_and_flattening():
    net = nets.MLP((1, 28, 28), [32, 16], (1, 28, 28), out_act="sigmoid")
    out = net(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 1, 28, 28) and float(out.min().detach()) >= 0 and float(out.max().detach()) <= 1
    assert nets.MLP(3, [], 2)(torch.zeros(4, 3)).shape == (4, 2)


def test_mlp_wrong_input_shape_is_readable():
    net = nets.MLP((1, 28, 28), [8], 2)
    with pytest.raises(ValueError, match=r"expects input of shape \(N, 1, 28, 28\), got \(5, 3, 32, 32\)"):
        net(torch.zeros(5, 3, 32, 32))


def test_conv_nets_shapes_and_errors():
    enc, dec = nets.ConvEncoder(10, channels=8), nets.ConvDecoder(10, channels=8)
    z = enc(torch.rand(3, 1, 28, 28))
    assert z.shape == (3, 10)
    x = dec(z)
    assert x.shape == (3, 1, 28, 28) and float(x.min().detach()) >= 0 and float(x.max().detach()) <= 1
    with pytest.raises(ValueError, match="ConvEncoder"):
        enc(torch.zeros(3, 784))
    with pytest.raises(ValueError, match="ConvDecoder"):
        dec(torch.zeros(3, 11))


def test_critic_without_batchnorm():
    critic = nets.ConvEncoder(1, channels=8, norm=None)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in critic.modules())


def test_unknown_activation_norm_and_bad_dropout():
    with pytest.raises(ValueError, match="unknown activation"):
        nets.activation("swishy")
    with pytest.raises(ValueError, match="unknown norm"):
        nets.MLP(2, [4], 1, norm="instance")
    for rate in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
            nets.MLP(2, [4], 1, dropout=rate)


def test_count_parameters():
    assert nets.count_parameters(nets.MLP(3, [4], 2)) == 3 * 4 + 4 + 4 * 2 + 2


def test_input_on_another_device_than_the_weights_is_a_clear_error():
    """A student's data on the GPU and the model still on the CPU (or the reverse) is named, not torch's
    device-mismatch error; the "meta" device stands in for a GPU here (tests/test_cuda.py has the real one)."""
    cases = {nets.MLP(2, [4], 1): torch.empty(3, 2, device="meta"),
             nets.ConvEncoder(out_dim=1, channels=2): torch.empty(3, 1, 28, 28, device="meta"),
             nets.ConvDecoder(in_dim=2, channels=2): torch.empty(3, 2, device="meta")}
    for net, x in cases.items():
        assert nets.weight_device(net) == torch.device("cpu")
        with pytest.raises(ValueError, match=r"weights on cpu but got input on meta; move one .* x.to\(model.device\)"):
            net(x)
        net(torch.zeros(x.shape))  # the same input on the CPU passes
