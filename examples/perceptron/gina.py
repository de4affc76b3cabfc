# exported from my notebook by mistake
import torch


def perceptron_predict(w, X):
    w = torch.as_tensor(w, dtype=torch.float32)
    X = torch.as_tensor(X, dtype=torch.float32)
    return (X @ w[1:] + w[0] > 0).float()


def perceptron_train(X, y, epochs=100, lr=1.0):
    n, d = X.shape
    w = torch.zeros(d + 1)
    for epoch in range(epochs):
        n_errors = 0
        for i in range(n):
            x_i = torch.cat([torch.ones(1), X[i].float()])
            y_hat = 1.0 if torch.dot(w, x_i).item() > 0 else 0.0
            update = lr * (float(y[i]) - y_hat)
            if update != 0.0:
                w = w + update * x_i
                n_errors += 1
        if n_errors == 0:
            break
    return w


AND_WEIGHTS = torch.tensor([-1.5, 1.0, 1.0])
