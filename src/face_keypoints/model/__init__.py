"""The network: MobileNetV1 backbone, one regression head per landmark scheme, losses."""
