"""relu_backward with one line of its loop indented by a tab among lines indented by spaces, which
Python 2 read as 8 columns: under Python 3 the whole file is a TabError ("inconsistent use of tabs and
spaces in indentation")."""


def relu_backward(output, input, layer):
    input_od = np.zeros(input["data"].shape)
    for n in range(input["batch_size"]):
        positive = input["data"][:, n] > 0
	input_od[:, n] = output["diff"][:, n] * positive
    return input_od
