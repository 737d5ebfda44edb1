"""The example from lucid.models.ResNeXt's documentation page, verbatim."""
import lucid
import lucid.models as models

config = models.ResNeXtConfig(
    layers=[3, 4, 6, 3],
    cardinality=32,
    base_width=4,
    num_classes=10,
    in_channels=1,
    stem_type="deep",
    stem_width=32,
)
model = models.ResNeXt(config)
output = model(lucid.zeros(1, 1, 224, 224))
print(output.shape)
