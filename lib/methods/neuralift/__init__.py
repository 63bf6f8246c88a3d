"""NeuralLift-360: one image to a 360-degree NeRF (notebook 09).

- :mod:`lib.methods.neuralift.lift`: the input (image, mask, depth), the settings and the lift step
- :mod:`lib.methods.neuralift.scoring`: a lifted NeRF scored against a procedural input's true shape
  and views
"""
