"""The 2016-17 handout has no layer or group normalisation: those four functions absent from the file."""

del layernorm_forward, layernorm_backward, spatial_groupnorm_forward, spatial_groupnorm_backward
