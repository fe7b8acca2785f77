"""Synthetic multi-label data: a small ICD-9 coding set, and a problem with a known p(y|x).

- :func:`synthetic_coding_set`: radiology-style reports (clinical history + impression)
  coded with ICD-9-CM by fixed rules, in the style of the CMC 2007 challenge, for demos and
  tests when the real data is absent.
- :func:`dependent_label_problem`: features ``x ~ N(0, I)`` and labels from a known
  x-dependent Bernoulli mixture, with ``p(y|x)`` for every label set, so that decoders and
  models can be checked against the Bayes-optimal answer.
"""

from __future__ import annotations

import numpy as np

from comorbid.data.cmc import SECTIONS, note_text
from comorbid.data.dataset import MultiLabelDataset

#: Most labels :func:`dependent_label_problem` enumerates (2^12 = 4096 sets per row).
MAX_LABELS = 12

#: The codes of :func:`synthetic_coding_set` (ICD-9-CM) and what they mean.
CODING_SET_CODES: dict[str, str] = {
    "486": "Pneumonia, organism unspecified",
    "493.90": "Asthma, unspecified",
    "518.0": "Pulmonary collapse (atelectasis)",
    "591": "Hydronephrosis",
    "593.70": "Vesicoureteral reflux, unspecified",
    "599.0": "Urinary tract infection, site not specified",
    "780.6": "Fever",
    "786.05": "Shortness of breath",
    "786.07": "Wheezing",
    "786.2": "Cough",
    "V13.02": "Personal history of urinary tract infection",
}

_AGES = (
    "Two month old", "Four month old", "Ten month old", "Eighteen month old", "Two year old",
    "Three year old", "Five year old", "Seven year old", "Nine year old", "Twelve year old",
    "Fifteen year old", "Seventeen year old",
)
_SEXES = ("", " male", " female")
_DURATIONS = ("", " for two days", " for one week", " x3 days", " for several weeks")
_SIDES = ("right lower lobe", "left lower lobe", "right middle lobe", "right upper lobe", "lingular")
_PNEUMONIA = (
    "{side} pneumonia.",
    "Findings consistent with {side} pneumonia.",
    "Focal {side} airspace disease, consistent with pneumonia.",
)
_UNCERTAIN_PNEUMONIA = (
    "Possible early {side} pneumonia.",
    "Cannot exclude {side} pneumonia.",
    "Questionable {side} infiltrate.",
)
_NO_PNEUMONIA = ("No focal pneumonia.", "No evidence of pneumonia.", "No focal consolidation or pneumonia.")
_CLEAR = (
    "The lungs are clear.",
    "Normal chest.",
    "Findings suggesting viral or reactive airway disease.",
    "Peribronchial thickening without focal consolidation.",
)
_ATELECTASIS = ("Subsegmental atelectasis in the {side}.", "Mild {side} atelectasis.")
_VUR = ("Grade {grade} vesicoureteral reflux on the {kidney}.", "{Kidney} grade {grade} vesicoureteral reflux.")
_NO_VUR = ("No vesicoureteral reflux.", "No evidence of vesicoureteral reflux.")
_HYDRO = ("Mild {kidney} hydronephrosis.", "Moderate hydronephrosis of the {kidney} kidney.")
_NO_HYDRO = ("No hydronephrosis.", "Normal kidneys without hydronephrosis.")
_NORMAL_VCUG = ("Normal voiding cystourethrogram.", "Normal bladder and urethra.")


def synthetic_coding_set(n: int = 600, seed: int = 0) -> MultiLabelDataset:
    """A synthetic ICD-9-CM coding set of ``n`` pediatric radiology reports.

    Reports are chest radiographs (cough, fever, wheezing, shortness of breath; pneumonia,
    asthma, atelectasis) or renal studies (urinary tract infection, vesicoureteral reflux,
    hydronephrosis), written as "clinical history" and "impression" like the CMC 2007
    challenge reports (Pestian et al., 2007, BioNLP), and coded by rules that follow the
    outpatient coding guidelines the challenge's coders used:

    - a sign or symptom is not coded when a definite diagnosis that explains it is:
      pneumonia (486) present -> cough (786.2) and fever (780.6) not coded; asthma (493.90)
      present -> wheezing (786.07) and shortness of breath (786.05) not coded;
    - uncertain diagnoses ("Possible early pneumonia.", "Cannot exclude ...") are not coded,
      and negated findings ("No focal pneumonia.", "No hydronephrosis.") are never coded;
    - current UTI (599.0) and history of UTI (V13.02) exclude each other;
    - findings co-occur: fever with cough, fever with UTI, hydronephrosis (591) with
      vesicoureteral reflux (593.70).

    Every report has at least one code. Codes are the 11 of :data:`CODING_SET_CODES`.

    Args:
        n: number of reports.
        seed: the same seed gives the same data set.

    Returns:
        A text dataset like :func:`comorbid.data.cmc.read_cmc_xml`'s: ids
        ``"synthetic-00000"``..., inputs the notes with section headers (``note_text``),
        ``extras["sections"]`` the ``{"CLINICAL_HISTORY": .., "IMPRESSION": ..}`` dicts, label
        names the codes sorted as strings.
    """
    if n < 1:
        raise ValueError(f"Expected n >= 1, got {n}")
    rng = np.random.default_rng(seed)
    label_names = sorted(CODING_SET_CODES)
    column = {code: j for j, code in enumerate(label_names)}
    labels = np.zeros((n, len(label_names)), dtype=np.int8)
    sections = []
    for i in range(n):
        writer = _chest_report if rng.random() < 0.62 else _renal_report
        history, impression, codes = writer(rng)
        labels[i, [column[code] for code in codes]] = 1
        sections.append({SECTIONS[0]: history, SECTIONS[1]: impression})
    return MultiLabelDataset(
        ids=[f"synthetic-{i:05d}" for i in range(n)],
        inputs=[note_text(s) for s in sections],
        labels=labels,
        label_names=label_names,
        extras={"sections": sections},
        name="synthetic-coding",
    )


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def _patient(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _AGES)}{_pick(rng, _SEXES)}"


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def _chest_report(rng: np.random.Generator) -> tuple[str, str, set[str]]:
    cough = rng.random() < 0.75
    fever = rng.random() < (0.6 if cough else 0.3)
    wheezing = rng.random() < 0.15
    breathless = rng.random() < 0.1
    if not (cough or fever or wheezing or breathless):
        wheezing, breathless = (True, False) if rng.random() < 0.6 else (False, True)
    asthma = rng.random() < (0.5 if wheezing else 0.08)
    pneumonia_risk = 0.06 + 0.22 * fever + 0.08 * cough
    pneumonia = rng.random() < pneumonia_risk  # a definite diagnosis
    uncertain = not pneumonia and rng.random() < 0.5 * pneumonia_risk
    atelectasis = rng.random() < 0.12

    named = (("cough", cough), ("fever", fever), ("wheezing", wheezing), ("shortness of breath", breathless))
    symptoms = [name for name, present in named if present]
    joined = symptoms[0] if len(symptoms) == 1 else ", ".join(symptoms[:-1]) + " and " + symptoms[-1]
    history = f"{_patient(rng)} with {joined}{_pick(rng, _DURATIONS)}."
    if asthma:
        history += " History of asthma."
    if rng.random() < 0.2:
        history += " Rule out pneumonia."

    side = _pick(rng, _SIDES)
    impression = []
    if pneumonia:
        impression.append(_sentence(_pick(rng, _PNEUMONIA).format(side=side)))
    elif uncertain:
        impression.append(_pick(rng, _UNCERTAIN_PNEUMONIA).format(side=side))
    if atelectasis:
        impression.append(_pick(rng, _ATELECTASIS).format(side=_pick(rng, _SIDES)))
    if not (pneumonia or uncertain):
        if rng.random() < 0.5:
            impression.append(_pick(rng, _NO_PNEUMONIA))
        if not atelectasis or rng.random() < 0.3:
            impression.append(_pick(rng, _CLEAR))
        if not impression:
            impression.append(_pick(rng, _NO_PNEUMONIA))

    codes = set()
    if pneumonia:
        codes.add("486")
    if asthma:
        codes.add("493.90")
    if atelectasis:
        codes.add("518.0")
    if cough and not pneumonia:
        codes.add("786.2")
    if fever and not pneumonia:
        codes.add("780.6")
    if wheezing and not asthma:
        codes.add("786.07")
    if breathless and not (asthma or pneumonia):
        codes.add("786.05")
    if not codes:  # only breathlessness explained by pneumonia: the pneumonia is coded
        codes.add("486" if pneumonia else "786.05")
    return history, " ".join(impression), codes


def _renal_report(rng: np.random.Generator) -> tuple[str, str, set[str]]:
    current_uti = rng.random() < 0.55
    fever = rng.random() < (0.45 if current_uti else 0.03)
    reflux = rng.random() < 0.4
    hydronephrosis = rng.random() < (0.45 if reflux else 0.15)

    patient = _patient(rng)
    if current_uti:
        reason = "urinary tract infection" if rng.random() < 0.5 else "UTI"
        history = f"{patient} with {reason}{' and fever' if fever else ''}."
    else:
        history = f"{patient} with history of urinary tract infection, follow-up."
        if fever:
            history += " Fever."
    grade = ("I", "II", "III", "IV")[rng.integers(4)]
    kidney = ("left", "right")[rng.integers(2)]
    impression = []
    if reflux:
        vur = _pick(rng, _VUR).format(grade=grade, kidney=kidney, Kidney=kidney.title())
        impression.append(_sentence(vur))
    elif rng.random() < 0.7:
        impression.append(_pick(rng, _NO_VUR))
    if hydronephrosis:
        impression.append(_pick(rng, _HYDRO).format(kidney=kidney))
    elif rng.random() < 0.5:
        impression.append(_pick(rng, _NO_HYDRO))
    if not (reflux or hydronephrosis):
        impression.append(_pick(rng, _NORMAL_VCUG))

    codes = {"599.0" if current_uti else "V13.02"}
    if fever:
        codes.add("780.6")
    if reflux:
        codes.add("593.70")
    if hydronephrosis:
        codes.add("591")
    return history, " ".join(impression), codes


# ---------------------------------------------------------------------------------------------
def dependent_label_problem(
    n: int = 2000,
    n_features: int = 10,
    n_labels: int = 6,
    seed: int = 0,
    strength: float = 4.0,
    sharpness: float = 1.0,
) -> tuple[MultiLabelDataset, np.ndarray]:
    """Features with labels drawn from a known, strongly dependent p(y|x).

    The model is a conditional Bernoulli mixture (Li, Wang, Pavlu and Aslam, 2016,
    "Conditional Bernoulli Mixtures for Multi-label Classification", ICML):

        x ~ N(0, I_D),   k | x ~ softmax(sharpness * W x),   y_j | k ~ Bernoulli(|P_kj - eps|)

    with ``W [K, D]`` of N(0, 1/D) entries, ``eps = 1 / (1 + exp(strength))`` the chance a
    label disagrees with its prototype, and ``K = M`` prototypes ``P_k = {sigma(k), sigma(k+1 mod M)}``
    for a random permutation ``sigma`` of the labels: a ring of overlapping pairs. Each label is
    in two prototypes, so when a few prototypes compete its marginal exceeds 0.5 although the
    union of their labels is almost never drawn: thresholding the marginals at 0.5 predicts
    that union while the joint mode predicts one prototype (Dembczyński, Waegeman, Cheng and
    Hüllermeier, 2012, "On label dependence and loss minimization in multi-label
    classification", Machine Learning 88).

    ``p(y|x) = sum_k pi_k(x) prod_j (1 - eps)^[y_j = P_kj] eps^[y_j != P_kj]`` exactly, for all
    ``2^M`` sets. With the defaults (n=2000, D=10, M=6, strength=4, sharpness=1) the true
    mode has expected subset accuracy 0.367 and the thresholded true marginals 0.195 (seed 0;
    seeds 1 and 2: 0.354 vs 0.160 and 0.358 vs 0.175), measured with::

        from comorbid.data.synthetic import *
        d, p = dependent_label_problem(seed=0)
        bayes_optimal_subset_accuracy(p), expected_subset_accuracy(p, threshold_marginals(p, 6))

    A larger ``sharpness`` lets x decide more and narrows the gap; ``strength -> 0`` makes every set equally likely.

    Args:
        n: number of rows ``N``.
        n_features: ``D``.
        n_labels: ``M``, 3 to 12 (``2^M`` sets are enumerated).
        seed: one seed for ``W``, the permutation, ``x`` and the samples.
        strength: log-odds that a label agrees with its prototype.
        sharpness: scale of the mixing logits.

    Returns:
        ``(dataset, true_set_probs)``: a dataset with dense ``inputs [N, D]``, labels
        ``[N, M]`` sampled from p(y|x), ids ``"0".."N-1"``, label names ``"y0".."y{M-1}"``;
        and ``true_set_probs [N, 2^M]``, entry ``[i, s]`` = p(y = set s | x_i), set ``s``
        having label ``j`` iff bit ``j`` of ``s`` is 1 (label 0 the least significant bit, the
        order of ``comorbid.distributions.all_label_sets``).
    """
    if not 3 <= n_labels <= MAX_LABELS:
        raise ValueError(f"Expected 3 <= n_labels <= {MAX_LABELS}, got {n_labels}")
    if n < 1 or n_features < 1:
        raise ValueError(f"Expected n >= 1 and n_features >= 1, got n={n}, n_features={n_features}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_labels)
    prototypes = np.zeros((n_labels, n_labels), dtype=np.int8)  # [K, M]
    for k in range(n_labels):
        prototypes[k, [order[k], order[(k + 1) % n_labels]]] = 1
    weights = rng.normal(size=(n_labels, n_features)) / np.sqrt(n_features)  # [K, D]
    features = rng.normal(size=(n, n_features))  # [N, D]
    logits = sharpness * features @ weights.T  # [N, K]
    mixing = np.exp(logits - logits.max(axis=1, keepdims=True))
    mixing /= mixing.sum(axis=1, keepdims=True)
    eps = 1.0 / (1.0 + np.exp(strength))

    sets = label_sets(n_labels)  # [2^M, M]
    agree = (sets[None, :, :] == prototypes[:, None, :]).sum(-1)  # [K, 2^M]
    component_probs = (1.0 - eps) ** agree * eps ** (n_labels - agree)  # [K, 2^M]
    true_set_probs = mixing @ component_probs  # [N, 2^M]

    # Sample the generative story itself (component, then flips), not from true_set_probs,
    # so that tests comparing the two check the formula above.
    component = (rng.random((n, 1)) > np.cumsum(mixing, axis=1)).sum(axis=1)  # [N]
    component = np.minimum(component, n_labels - 1)  # guard against cumsum rounding below 1
    flips = rng.random((n, n_labels)) < eps
    labels = (prototypes[component] ^ flips).astype(np.int8)
    dataset = MultiLabelDataset(
        ids=[str(i) for i in range(n)],
        inputs=features,
        labels=labels,
        label_names=[f"y{j}" for j in range(n_labels)],
        feature_names=[f"x{d}" for d in range(n_features)],
        name="dependent-labels",
    )
    return dataset, true_set_probs


def label_sets(n_labels: int) -> np.ndarray:
    """Every label set, ``[2^M, M]`` ``np.int8``; row ``s`` holds the binary digits of ``s``
    (label 0 the least significant bit), as ``comorbid.distributions.all_label_sets``."""
    if not 0 <= n_labels <= MAX_LABELS:
        raise ValueError(f"Expected 0 <= n_labels <= {MAX_LABELS}, got {n_labels}")
    return ((np.arange(2**n_labels)[:, None] >> np.arange(n_labels)[None, :]) & 1).astype(np.int8)


def set_index(label_matrix: np.ndarray) -> np.ndarray:
    """The index of each row's label set in :func:`label_sets` order, ``[N, M] -> [N]``."""
    label_matrix = np.asarray(label_matrix).astype(np.int64)
    return label_matrix @ (1 << np.arange(label_matrix.shape[1], dtype=np.int64))


def threshold_marginals(true_set_probs: np.ndarray, n_labels: int, threshold: float = 0.5) -> np.ndarray:
    """Marginals ``P(y_j = 1 | x_i) = sum_s p_is [j in s]`` thresholded: ``[N, 2^M] -> [N, M]``
    (``>= threshold``)."""
    marginals = np.asarray(true_set_probs) @ label_sets(n_labels)
    return (marginals >= threshold).astype(np.int8)


def bayes_optimal_subset_accuracy(true_set_probs: np.ndarray) -> float:
    """Expected subset accuracy of predicting each row's most probable set: ``mean_i max_s p_is``."""
    return float(np.asarray(true_set_probs).max(axis=1).mean())


def expected_subset_accuracy(true_set_probs: np.ndarray, predictions: np.ndarray) -> float:
    """Expected subset accuracy of ``predictions [N, M]`` under ``true_set_probs [N, 2^M]``:
    ``mean_i p(y = prediction_i | x_i)``."""
    true_set_probs = np.asarray(true_set_probs)
    predictions = np.asarray(predictions)
    n, n_sets = true_set_probs.shape
    if predictions.shape != (n, int(np.log2(n_sets))) or 2 ** predictions.shape[1] != n_sets:
        raise ValueError(
            f"Expected predictions of shape ({n}, {int(np.log2(n_sets))}) to match true_set_probs "
            f"{true_set_probs.shape}, got {predictions.shape}"
        )
    return float(true_set_probs[np.arange(n), set_index(predictions)].mean())
