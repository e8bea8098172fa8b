"""sgd_momentum leaves out the weight decay: winc_w = mu winc_w + w_rate dw (the bias and the step right)."""


def sgd_momentum(w_rate, b_rate, mu, decay, params, param_winc, param_grad):
    params_, param_winc_ = copy.deepcopy(params), copy.deepcopy(param_winc)
    for i in params:
        param_winc_[i]["w"] = mu * param_winc[i]["w"] + w_rate * param_grad[i]["w"]
        param_winc_[i]["b"] = mu * param_winc[i]["b"] + b_rate * param_grad[i]["b"]
        params_[i]["w"] = params[i]["w"] - param_winc_[i]["w"]
        params_[i]["b"] = params[i]["b"] - param_winc_[i]["b"]
    return params_, param_winc_
