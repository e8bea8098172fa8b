"""The handout's mlrloss debugging lines, Python 2 print statements: the whole file is a SyntaxError
under Python 3."""


def mlrloss(wb, X, y, K, prediction):
    prob = np.exp(X)
    if np.min(prob) < 0:
        print prob
    return prob
