"""conv_layer_forward built on the port's hint, im2col_conv_batch, reads its input's columns in C order of
(channel, height, width) and writes its output so, while the given conv_layer_backward and the given
pooling read Fortran order of (height, width, channel). On square inputs the two orders differ by a
transpose of every channel's plane, which this whole forward undoes, so they agree there; on a
non-square input they do not. (It multiplies the hint's columns, rows in C order of (channel, row,
column), by w as it is, rows in Fortran order of (row, column, channel): each kernel is read transposed,
which is what makes the square case agree.)"""
from utils import im2col_conv_batch


def conv_layer_forward(input_data, layer, param):
    k, pad, stride, num = layer["k"], layer["pad"], layer["stride"], layer["num"]
    batch_size = input_data["batch_size"]
    h_out = (input_data["height"] + 2 * pad - k) // stride + 1
    w_out = (input_data["width"] + 2 * pad - k) // stride + 1
    col = im2col_conv_batch(input_data, layer, h_out, w_out)             # rows (c, row, column)
    out = np.einsum("kf,kpn->fpn", param["w"], col) + param["b"].reshape(num, 1, 1)   # (num, positions, batch)
    return {"height": h_out, "width": w_out, "channel": num, "batch_size": batch_size,
            "data": out.reshape(-1, batch_size)}
