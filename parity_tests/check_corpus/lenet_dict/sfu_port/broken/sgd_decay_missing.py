"""sgd_momentum leaves out the weight decay: winc_w = mu winc_w + rate dw."""


def sgd_momentum(rate, mu, weight_decay, params, param_winc, param_grad):
    params_, param_winc_ = copy.deepcopy(params), copy.deepcopy(param_winc)
    for i in range(len(params)):
        param_winc_[i]["w"] = mu * param_winc[i]["w"] + rate * param_grad[i]["w"]
        param_winc_[i]["b"] = mu * param_winc[i]["b"] + rate * param_grad[i]["b"]
        params_[i]["w"] = params[i]["w"] - param_winc_[i]["w"]
        params_[i]["b"] = params[i]["b"] - param_winc_[i]["b"]
    return params_, param_winc_
