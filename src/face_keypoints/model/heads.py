"""Heads: backbone features -> each scheme's `points_<scheme>` output (x0, y0, x1, y1, ...).

Points are in normalised model-crop coordinates: pixel / input size, so (0, 0) is the
crop's top-left pixel centre and 1 is its width. Every head is one class in `HEADS`: what
it reads from the backbone (`features`, built once and shared by the schemes), a scheme's
output (`points`), the extra tensors its loss reads (`extra_outputs`), its loss, and how
a fresh one starts at a shape. Extra heads (`EXTRA_HEADS`: presence, visibility) add
outputs beside the points with losses of their own. train.py, export and the runtime
call only the functions at the bottom of this module, never asking which heads a model
has.

* gap: global average pooling (MobileNet's classifier head; discards position);
* flatten: every cell of the map feeds the dense layer (keeps position, more weights);
* dwpool: a depthwise convolution as large as the map, a learned per-channel spatial
  pooling (keeps position with few weights; MediaPipe's landmark models use this idea);
* msgap: global average pooling of the last three resolution stages, concatenated (finer
  maps carry local detail the deepest one has averaged away; PFLD's multi-scale idea);
* simcc: coordinate classification (RTMPose's SimCC). Per point, 1x1 projections of the
  last map read cell by cell (position kept), then a classification over x bins and over
  y bins (codecs.SimCC), decoded in the graph as the softmax's expectation;
* pip: a heatmap and offsets on the stride-16 map (PIPNet; codecs.CellGrid). Every cell
  scores each point and votes for its position (cell centre + offset); the output is the
  votes' average weighted by the scores' softmax, decoded in the graph.

Every head ends in a layer named `points_<scheme>` whose bias is added to the 2K outputs,
so calibration.py moves any head's points the same way. Keras is imported inside the
methods: the registry's names are read by the command line before TensorFlow starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from face_keypoints.data.targets import PRESENCE, VISIBILITY, visible_name
from face_keypoints.model.codecs import CellGrid, SimCC

Tensor = Any  # a KerasTensor while building, a tf.Tensor in a loss


def output_name(scheme: str) -> str:
    return f"points_{scheme}"


def _offset_layer(num_points: int, scheme: str, start: float = 0.0):
    """The `points_<scheme>` layer of a head that decodes in the graph: adds a bias (the
    start, later calibration's shift) to the decoded 2K coordinates and nothing else."""
    import keras

    return keras.layers.EinsumDense(
        "ab,b->ab", output_shape=2 * num_points, bias_axes="b", kernel_initializer="ones",
        bias_initializer=keras.initializers.Constant(start), trainable=False,
        name=output_name(scheme))


def _constant_sum(kernel: np.ndarray, name: str):
    """A frozen bias-free dense layer: a weighted sum over the last axis with `kernel`
    (n,), as one FULLY_CONNECTED op every precision and the GPU delegate run."""
    import keras

    return keras.layers.Dense(1, use_bias=False, trainable=False, name=name,
                              kernel_initializer=keras.initializers.Constant(
                                  np.asarray(kernel, np.float32).reshape(-1, 1)))


class Head:
    """A regression head: a feature vector per image, one dense layer per scheme."""

    name = ""
    prefixes: tuple[str, ...] = ()  # layer names of its own, beside points_ and dropout_

    def features(self, stages: list[Tensor], input_size: int) -> Tensor:
        raise NotImplementedError

    def points(self, features: Tensor, scheme: str, num_points: int, input_size: int,
               dropout: float) -> Tensor:
        """2K outputs for one scheme. The kernel starts at zero, so the first prediction
        is the bias alone: the crop centre, or the mean shape that `start` puts there."""
        import keras

        if dropout > 0:
            features = keras.layers.Dropout(dropout, name=f"dropout_{scheme}")(features)
        return keras.layers.Dense(
            2 * num_points, kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(0.5), name=output_name(scheme),
        )(features)

    def extra_outputs(self, model, scheme: str) -> dict[str, Tensor]:
        """Tensors beside the points that the loss reads (none for regression)."""
        return {}

    def loss(self, model, kind: str, outputs: dict, scheme: str, target, mask):
        """A scheme's masked loss sum and point count (losses.point_loss's contract):
        `kind` (wing, l1, l2) on the points."""
        from face_keypoints.model.losses import point_loss

        return point_loss(kind, outputs[output_name(scheme)], target, mask)

    def start(self, model, scheme: str, shape: np.ndarray) -> None:
        """Make a fresh head start at `shape` ((K, 2) normalised) through its bias."""
        model.get_layer(output_name(scheme)).bias.assign(
            np.asarray(shape, np.float32).reshape(-1))


class Pooled(Head):
    """Regression from one vector that `summary` makes of the stages."""

    MULTI_SCALE_STAGES = 3

    def __init__(self, name: str) -> None:
        self.name = name
        self.prefixes = ("head_",)

    def features(self, stages: list[Tensor], input_size: int) -> Tensor:
        import keras

        last = stages[-1]
        if self.name == "msgap":
            pooled = [keras.layers.GlobalAveragePooling2D(name=f"head_pool_{i}")(stage)
                      for i, stage in enumerate(stages[-self.MULTI_SCALE_STAGES:])]
            if len(pooled) == 1:
                return pooled[0]
            return keras.layers.Concatenate(name="head_concat")(pooled)
        if self.name == "gap":
            return keras.layers.GlobalAveragePooling2D(name="head_pool")(last)
        if self.name == "flatten":
            return keras.layers.Flatten(name="head_flatten")(last)
        height, width = int(last.shape[1]), int(last.shape[2])
        pooled = keras.layers.DepthwiseConv2D((height, width), padding="valid",
                                              name="head_dwpool")(last)
        return keras.layers.Flatten(name="head_flatten")(pooled)


class CodecHead(Head):
    """A head whose loss reads, beside the points, the logits its codec decodes."""

    @staticmethod
    def logits_name(scheme: str) -> str:
        raise NotImplementedError

    def extra_outputs(self, model, scheme: str) -> dict[str, Tensor]:
        return {self.logits_name(scheme): model.get_layer(self.logits_name(scheme)).output}


class SimCCHead(CodecHead):
    """RTMPose's SimCC: per point, x and y bin logits read from the last map."""

    name = "simcc"
    prefixes = ("simcc_",)
    CHANNELS = 4  # 1x1 projections of the map per point
    HIDDEN = 64

    @staticmethod
    def logits_name(scheme: str) -> str:
        """The layer whose output the loss reads (bins before the softmax)."""
        return f"simcc_bins_{scheme}"

    def features(self, stages: list[Tensor], input_size: int) -> Tensor:
        return stages[-1]

    def points(self, features: Tensor, scheme: str, num_points: int, input_size: int,
               dropout: float) -> Tensor:
        """Each point gets CHANNELS 1x1 projections of the map and reads all of their
        cells (RTMPose flattens its map per point the same way), so where a feature fired
        survives. A dense layer shared by the scheme's points turns them into x and y bin
        logits; the softmax's expectation over the bin centres is the coordinate."""
        import keras

        codec = SimCC(input_size)
        cells = int(features.shape[1]) * int(features.shape[2])
        x = keras.layers.Conv2D(num_points * self.CHANNELS, 1, name=f"simcc_proj_{scheme}")(
            features)
        x = keras.layers.Reshape((cells, num_points, self.CHANNELS),
                                 name=f"simcc_cells_{scheme}")(x)
        x = keras.layers.Permute((2, 1, 3), name=f"simcc_by_point_{scheme}")(x)
        x = keras.layers.Reshape((num_points, cells * self.CHANNELS),
                                 name=f"simcc_points_{scheme}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{scheme}")(x)
        x = keras.layers.Dense(self.HIDDEN, activation="relu",
                               name=f"simcc_hidden_{scheme}")(x)
        x = keras.layers.Dense(2 * codec.bins, kernel_initializer="zeros",
                               name=f"simcc_logits_{scheme}")(x)
        # (K, 2 * bins) -> (2K, bins): rows x0, y0, x1, y1, ... as every head emits them.
        logits = keras.layers.Reshape((2 * num_points, codec.bins),
                                      name=self.logits_name(scheme))(x)
        probabilities = keras.layers.Softmax(axis=-1, name=f"simcc_softmax_{scheme}")(logits)
        expectation = _constant_sum(codec.centres(), f"simcc_expect_{scheme}")(probabilities)
        flat = keras.layers.Reshape((2 * num_points,), name=f"simcc_flat_{scheme}")(
            expectation)
        return _offset_layer(num_points, scheme)(flat)

    def loss(self, model, kind: str, outputs: dict, scheme: str, target, mask):
        """The codec's loss on the bins, against the target minus the offset the output
        layer adds (the start shape, later calibration), which the bins do not carry."""
        import tensorflow as tf

        offset = tf.reshape(output_bias(model, scheme), (-1, 2))
        codec = SimCC(int(model.input_shape[1]))
        return codec.loss(outputs[self.logits_name(scheme)], target - offset, mask)

    def start(self, model, scheme: str, shape: np.ndarray) -> None:
        """The bins start uniform (expectation at the bins' middle): the offset makes up
        the rest."""
        middle = float(np.mean(SimCC(int(model.input_shape[1])).centres()))
        super().start(model, scheme, np.asarray(shape, np.float32) - middle)


class HeatmapHead(CodecHead):
    """PIPNet's heatmap + offsets on the stride-16 map, decoded in the graph.

    The neck adds the deepest (stride-32) map, upsampled, to the stride-16 one, so each
    cell sees the whole face as well as its neighbourhood. Per point, every cell gives a
    score and an offset from its centre in cells; the point is the softmax-weighted
    average of the cells' votes. The loss pulls the decoded point onto the truth (the
    run's point loss) and the scores towards the truth's cell (codecs.CellGrid's KL), so
    the softmax peaks and the votes near the peak all point at the same place.
    """

    name = "pip"
    prefixes = ("pip_",)
    STRIDE = 16
    CHANNELS = 128  # of the neck
    HEAT_WEIGHT = 2.0  # of the scores' KL beside the point loss

    @staticmethod
    def logits_name(scheme: str) -> str:
        return f"pip_scores_{scheme}"

    def features(self, stages: list[Tensor], input_size: int) -> Tensor:
        import keras

        from face_keypoints.model.backbone import BN_MOMENTUM

        def normalised(x, name: str):
            return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)(x)

        cells = input_size // self.STRIDE
        fine = next((s for s in reversed(stages) if int(s.shape[1]) == cells), stages[-1])
        x = keras.layers.Conv2D(self.CHANNELS, 1, use_bias=False, name="pip_lateral")(fine)
        x = normalised(x, "pip_lateral_bn")
        deep = stages[-1]
        if deep is not fine:
            factor = int(fine.shape[1]) // int(deep.shape[1])
            top = keras.layers.Conv2D(self.CHANNELS, 1, use_bias=False, name="pip_top")(deep)
            top = normalised(top, "pip_top_bn")
            top = keras.layers.UpSampling2D(factor, interpolation="bilinear",
                                            name="pip_up")(top)
            x = keras.layers.Add(name="pip_merge")([x, top])
        x = keras.layers.ReLU(name="pip_merge_relu")(x)
        x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False,
                                         name="pip_refine_dw")(x)
        x = normalised(x, "pip_refine_dw_bn")
        x = keras.layers.ReLU(name="pip_refine_dw_relu")(x)
        x = keras.layers.Conv2D(self.CHANNELS, 1, use_bias=False, name="pip_refine_pw")(x)
        x = normalised(x, "pip_refine_pw_bn")
        return keras.layers.ReLU(name="pip_neck")(x)

    def points(self, features: Tensor, scheme: str, num_points: int, input_size: int,
               dropout: float) -> Tensor:
        import keras

        grid = CellGrid(int(features.shape[1]))
        cells = grid.cells * grid.cells
        if dropout > 0:
            features = keras.layers.Dropout(dropout, name=f"dropout_{scheme}")(features)

        def by_point(conv, part: str):
            """(B, H, W, K) -> (B, K, H * W): one row of cells per point."""
            x = keras.layers.Reshape((cells, num_points), name=f"pip_{part}_cells_{scheme}")(
                conv)
            return keras.layers.Permute((2, 1), name=f"pip_{part}_{scheme}")(x)

        # Zero kernels: a fresh head's scores are uniform and its votes the cell centres,
        # so it starts exactly at the crop's centre.
        scores = by_point(keras.layers.Conv2D(num_points, 1, kernel_initializer="zeros",
                                              name=f"pip_heat_{scheme}")(features),
                          "scores")  # the layer logits_name names
        weights = keras.layers.Softmax(axis=-1, name=f"pip_softmax_{scheme}")(scores)
        centre_x, centre_y = grid.centres()
        axes = []
        for axis, centres in (("x", centre_x), ("y", centre_y)):
            offset = by_point(keras.layers.Conv2D(
                num_points, 1, kernel_initializer="zeros",
                name=f"pip_offset_{axis}_{scheme}")(features), f"d{axis}")
            # Each cell's vote: its centre plus its offset (in cells), a frozen dense
            # layer; then the sum of the votes weighted by the scores' softmax.
            votes = keras.layers.Dense(
                cells, trainable=False, name=f"pip_votes_{axis}_{scheme}",
                kernel_initializer=keras.initializers.Constant(grid.cell * np.eye(cells)),
                bias_initializer=keras.initializers.Constant(centres))(offset)
            weighted = keras.layers.Multiply(name=f"pip_weighted_{axis}_{scheme}")(
                [weights, votes])
            axes.append(_constant_sum(np.ones(cells), f"pip_{axis}_{scheme}")(weighted))
        xy = keras.layers.Concatenate(axis=-1, name=f"pip_xy_{scheme}")(axes)
        flat = keras.layers.Reshape((2 * num_points,), name=f"pip_flat_{scheme}")(xy)
        return _offset_layer(num_points, scheme, start=0.5)(flat)

    def loss(self, model, kind: str, outputs: dict, scheme: str, target, mask):
        """The point loss on the decoded points plus HEAT_WEIGHT times the scores' KL,
        against the target in the centred frame the votes are summed in (the output
        layer's bias, 0.5 plus calibration's shift, taken off)."""
        import tensorflow as tf

        total, count = super().loss(model, kind, outputs, scheme, target, mask)
        offset = tf.reshape(output_bias(model, scheme), (-1, 2))
        logits = outputs[self.logits_name(scheme)]
        grid = CellGrid(int(np.sqrt(int(logits.shape[-1]))))
        heat, _ = grid.loss(logits, target - offset, mask)
        return total + self.HEAT_WEIGHT * heat, count

    def start(self, model, scheme: str, shape: np.ndarray) -> None:
        """Votes are absolute positions (cell + offset), so the bias stays at the crop's
        centre whatever the start shape: a fresh head starts there."""


class ExtraHead:
    """An output beside the points, from the same backbone: what it builds from the
    deepest map's average (shared by every extra head), the logits its loss reads, and
    its loss against the batch's targets[name] / masks[name] (data/pipeline.py fills
    them for every extra head a model has)."""

    name = ""
    logits = ""  # the name (or prefix, one per scheme) of its logit layers
    HIDDEN = 64
    # Of its loss beside the point loss (each a mean over what it saw). Its own layers
    # learn at Adam's pace whatever the weight; the backbone they share with the points
    # gets a tenth of their gradient, so the points lose little to them.
    WEIGHT = 0.1

    @property
    def prefixes(self) -> tuple[str, ...]:
        return ("extra_", self.logits, self.name)

    def outputs(self, vector: Tensor, schemes: dict[str, int]) -> dict[str, Tensor]:
        raise NotImplementedError

    def _logits(self, vector: Tensor, count: int, suffix: str = "") -> Tensor:
        """A hidden layer, then `count` logits named `logits + suffix`."""
        import keras

        hidden = keras.layers.Dense(self.HIDDEN, activation="relu",
                                    name=f"{self.name}_hidden{suffix and '_' + suffix}")(vector)
        return keras.layers.Dense(count, name=self.logits + suffix)(hidden)

    def extra_outputs(self, model) -> dict[str, Tensor]:
        """Its logits, which the loss reads."""
        return {layer.name: layer.output for layer in model.layers
                if layer.name.startswith(self.logits)}

    def loss(self, model, outputs: dict, targets: dict, masks: dict):
        raise NotImplementedError


def _binary_loss(logits, labels, mask):
    """Masked sum of sigmoid cross-entropies and the mask's sum."""
    import tensorflow as tf

    values = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_sum(values * mask), tf.reduce_sum(mask)


def _probability(logits: Tensor, name: str) -> Tensor:
    import keras

    return keras.layers.Activation("sigmoid", name=name)(logits)


class PresenceHead(ExtraHead):
    """The probability that the crop frames a face as training frames one: what a
    tracker asks before it trusts a crop made from the last frame's points."""

    name = PRESENCE
    logits = "presence_logit"

    def outputs(self, vector: Tensor, schemes: dict[str, int]) -> dict[str, Tensor]:
        return {PRESENCE: _probability(self._logits(vector, 1), PRESENCE)}

    def loss(self, model, outputs: dict, targets: dict, masks: dict):
        import tensorflow as tf

        logits = tf.reshape(outputs[self.logits], (-1,))
        return _binary_loss(logits, targets[PRESENCE], masks[PRESENCE])


class VisibilityHead(ExtraHead):
    """Per point, the probability that it is seen (not hidden by the face itself or
    covered by an object), for every scheme of the model."""

    name = VISIBILITY
    logits = "visible_logits_"

    def outputs(self, vector: Tensor, schemes: dict[str, int]) -> dict[str, Tensor]:
        return {visible_name(scheme): _probability(self._logits(vector, count, scheme),
                                                   visible_name(scheme))
                for scheme, count in schemes.items()}

    def loss(self, model, outputs: dict, targets: dict, masks: dict):
        total, count = 0.0, 0.0
        for name in [n for n in outputs if n.startswith(self.logits)]:
            key = visible_name(name[len(self.logits):])
            s, n = _binary_loss(outputs[name], targets[key], masks[key])
            total, count = total + s, count + n
        return total, count


EXTRA_HEADS: dict[str, ExtraHead] = {head.name: head for head in (
    PresenceHead(), VisibilityHead())}
EXTRA_NAMES = tuple(EXTRA_HEADS)


def extra_outputs(stages: list[Tensor], extras: list[str],
                  schemes: dict[str, int]) -> dict[str, Tensor]:
    """Every extra head's outputs, from one average of the deepest map."""
    import keras

    if not extras:
        return {}
    vector = keras.layers.GlobalAveragePooling2D(name="extra_pool")(stages[-1])
    result = {}
    for name in extras:
        result.update(EXTRA_HEADS[name].outputs(vector, schemes))
    return result


def model_extras(model) -> list[str]:
    """The extra heads a built model has, read back from its layers."""
    names = [layer.name for layer in model.layers]
    return [name for name, head in EXTRA_HEADS.items()
            if any(n.startswith(head.logits) for n in names)]


HEADS: dict[str, Head] = {head.name: head for head in (
    Pooled("gap"), Pooled("flatten"), Pooled("dwpool"), Pooled("msgap"), SimCCHead(),
    HeatmapHead())}
HEAD_NAMES = tuple(HEADS)


def get_head(name: str) -> Head:
    try:
        return HEADS[name]
    except KeyError:
        raise ValueError(f"head {name!r}: choose one of {', '.join(HEAD_NAMES)}") from None


def is_head_layer(name: str) -> bool:
    """Whether a layer belongs to a head (not the backbone): a run started from another
    model may leave these fresh."""
    prefixes = {output_name(""), "dropout_"}
    for head in (*HEADS.values(), *EXTRA_HEADS.values()):
        prefixes.update(head.prefixes)
    return name.startswith(tuple(prefixes))


def output_bias(model, scheme: str):
    """The bias added to a scheme's 2K outputs (x0, y0, ...), whatever the head."""
    return model.get_layer(output_name(scheme)).bias


def training_view(model, head: str):
    """What training calls: `model` itself, or a model sharing all its layers that also
    outputs the tensors its heads' losses read."""
    import keras

    extra = {}
    for name in model.output_names:
        if name.startswith(output_name("")):
            extra.update(get_head(head).extra_outputs(model, name[len(output_name("")):]))
    for name in model_extras(model):
        extra.update(EXTRA_HEADS[name].extra_outputs(model))
    if not extra:
        return model
    outputs = dict(zip(model.output_names, model.outputs, strict=True)) | extra
    return keras.Model(model.input, outputs, name=f"{model.name}_training")


def head_loss(model, head: str, kind: str, outputs: dict, scheme: str, target, mask):
    """A scheme's masked loss sum and point count, as its head learns."""
    return get_head(head).loss(model, kind, outputs, scheme, target, mask)


def loss_terms(model, head: str, kind: str, schemes: list[str], extras: list[str],
               outputs: dict, targets: dict, masks: dict) -> list[tuple]:
    """(masked sum, count, weight) of each loss the model learns with: the points of
    every scheme as one term (averaged over the points seen), then each extra head's.
    Training averages each term over what all replicas saw and adds them, weighted."""
    total, count = 0.0, 0.0
    for scheme in schemes:
        s, n = head_loss(model, head, kind, outputs, scheme, targets[scheme], masks[scheme])
        total, count = total + s, count + n
    terms = [(total, count, 1.0)]
    for name in extras:
        extra = EXTRA_HEADS[name]
        terms.append((*extra.loss(model, outputs, targets, masks), extra.WEIGHT))
    return terms
