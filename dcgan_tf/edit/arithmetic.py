"""The DCGAN paper's vector arithmetic (Radford et al. 2016, section 6.3): average the z of
the three faces the attribute classifier is most sure show each concept (single exemplars were
unstable), add and subtract the averages, and look at the result with a little noise around it.
"""

from dataclasses import dataclass

import numpy as np

from dcgan_tf.edit.directions import sigmoid
from dcgan_tf.model import latent


def parse_concept(text):
    """'Smiling,!Male' -> {'Smiling': True, 'Male': False}."""
    concept = {}
    for part in text.split(","):
        name = part.strip().lstrip("!")
        if not name or name in concept:
            raise ValueError(f"bad concept {text!r}: give attribute names separated by commas, "
                             "each once, ! for absent (e.g. 'Smiling,!Male')")
        concept[name] = not part.strip().startswith("!")
    return concept


def parse_expression(terms):
    """['A', '-', 'B', '+', 'C'] -> [(+1, concept A), (-1, concept B), (+1, concept C)]."""
    if len(terms) % 2 == 0 or any(op not in ("+", "-") for op in terms[1::2]):
        raise ValueError("arithmetic takes concepts joined by + and -, e.g. 'Smiling,!Male' - '!Smiling,!Male' "
                         f"+ '!Smiling,Male'; got {' '.join(terms) or 'nothing'}")
    signs = [1] + [1 if op == "+" else -1 for op in terms[1::2]]
    return [(sign, parse_concept(text)) for sign, text in zip(signs, terms[0::2])]


def expected_attributes(expression):
    """What the arithmetic should give: each attribute's +-1 values (present/absent) added
    with the signs; > 0 present, < 0 absent, 0 undetermined."""
    total = {}
    for sign, concept in expression:
        for name, present in concept.items():
            total[name] = total.get(name, 0) + sign * (1 if present else -1)
    return total


def concept_confidence(logits, columns, concept):
    """log P(all of the concept's attributes as given), treating the classifier's outputs as independent."""
    signs = np.array([1.0 if present else -1.0 for present in concept.values()])
    return -np.logaddexp(0.0, -logits[:, columns] * signs).sum(axis=1)


@dataclass
class Arithmetic:
    """Vector arithmetic's latent points and faces; z and images share their leading shapes."""

    expression: list  # (sign, concept)
    exemplars: np.ndarray  # z [concepts, 3, latent_dim], most confident first
    confidence: np.ndarray  # [concepts, 3] P(concept) of each exemplar, by the classifier
    averages: np.ndarray  # z [concepts, latent_dim]
    results: np.ndarray  # z [9, latent_dim]: the result in the middle, with noise around it
    images: dict  # uint8 faces of "exemplars", "averages" and "results"
    result_probability: dict  # attribute -> the classifier's mean probability on the result faces

    def figure(self):
        from dcgan_tf.utils.images import arithmetic_figure
        return arithmetic_figure(self.images["exemplars"], self.images["averages"],
                                 [sign for sign, _ in self.expression], self.images["results"])

    def report(self, texts):
        lines = [f"{text}: exemplars' probability " + ", ".join(f"{p:.2f}" for p in confidence)
                 for text, confidence in zip(texts, self.confidence)]
        verdict = {1: "expected present", -1: "expected absent", 0: "undetermined"}
        return "\n".join(lines + ["the 9 result faces, classifier probability: " + ", ".join(
            f"{name} {self.result_probability[name]:.2f} ({verdict[int(np.sign(total))]})"
            for name, total in expected_attributes(self.expression).items())])


def vector_arithmetic(generator, classifier, expression, pool=2000, seed=0, truncation=None, noise=0.25,
                      exemplars=3, batch_size=256):
    """Choose each concept's exemplars among `pool` generated faces and do the arithmetic on their mean z."""
    z = latent.sample(pool, generator.latent_dim, seed, truncation).numpy()
    logits = classifier.logits(generator.all(z, batch_size))
    chosen, confidence = [], []
    for _, concept in expression:
        log_p = concept_confidence(logits, classifier.columns(list(concept)), concept)
        best = np.argsort(-log_p)[:exemplars]
        chosen.append(z[best])
        confidence.append(np.exp(log_p[best]))
    chosen = np.stack(chosen)
    averages = chosen.mean(axis=1)
    result = sum(sign * average for (sign, _), average in zip(expression, averages))
    # The paper's figure 7: uniform noise of +-0.25 around the result for the 8 other faces.
    jitter = np.random.default_rng(seed).uniform(-noise, noise, (9, generator.latent_dim))
    jitter[4] = 0.0
    results = (result + jitter).astype(np.float32)
    faces = generator(chosen.reshape(-1, chosen.shape[-1]))
    images = {"exemplars": faces.reshape(*chosen.shape[:2], *faces.shape[1:]),
              "averages": generator(averages), "results": generator(results)}
    probability = sigmoid(classifier.logits(images["results"])).mean(axis=0)
    named = {name: float(probability[classifier.names.index(name)]) for name in expected_attributes(expression)}
    return Arithmetic(expression, chosen, np.stack(confidence), averages, results, images, named)
