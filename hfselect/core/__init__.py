"""Pure algorithms: no file, network or database I/O, no torch.

Clustering of models by their benchmark results, the coarse-recall rules, learning-curve trend
predictors and the successive-halving arithmetic. Everything here takes plain data (pandas frames,
numbers) and returns plain data, so it is tested without models and reused by every layer above.
"""
