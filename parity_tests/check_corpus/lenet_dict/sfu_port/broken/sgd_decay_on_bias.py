"""sgd_momentum decays the bias too: winc_b = mu winc_b + rate (db + weight_decay b)."""


def sgd_momentum(rate, mu, weight_decay, params, param_winc, param_grad):
    params_, param_winc_ = copy.deepcopy(params), copy.deepcopy(param_winc)
    for i in range(len(params)):
        for key in ("w", "b"):
            step = param_grad[i][key] + weight_decay * params[i][key]
            param_winc_[i][key] = mu * param_winc[i][key] + rate * step
            params_[i][key] = params[i][key] - param_winc_[i][key]
    return params_, param_winc_
