"""Synthetic multi-label data: a small ICD-9 coding set, and a problem with a known p(y|x).

- :func:`synthetic_coding_set`: radiology-style reports (clinical history + impression)
  coded with ICD-9-CM by fixed rules, in the style of the CMC 2007 challenge, for demos and
  tests when the real data is absent.
- :func:`dependent_label_problem`: features ``x ~ N(0, I)`` and labels from a known
  x-dependent Bernoulli mixture, with ``p(y|x)`` for every label set, so that decoders and
  models can be checked against the Bayes-optimal answer.
- :func:`parity_label_problem`: the same, with labels bound by soft parity constraints on
  groups of three (a dependence of order 3, no pairwise part) and tendencies non-linear in x.
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


def parity_label_problem(
    n: int = 2000,
    n_features: int = 10,
    n_labels: int = 6,
    seed: int = 0,
    strength: float = 6.0,
    sharpness: float = 1.5,
    offset: float = 2.0,
    group_size: int = 3,
    hidden: int = 16,
) -> tuple[MultiLabelDataset, np.ndarray]:
    """Features with labels whose dependence is of order 3 (not pairwise) and whose marginals
    are non-linear in x, from a known p(y|x).

    The labels are split (by a random permutation) into ``M / group_size`` disjoint groups
    ``G_1, G_2, ...``; each group prefers an even number of its labels on (a soft parity, or
    XOR, constraint), and each label's own tendency ``a_j(x)`` is a random one-hidden-layer
    tanh network of x:

        x ~ N(0, I_D),   a(x) = offset + sharpness * V tanh(U x + c),
        p(y|x) ∝ exp( sum_j a_j(x) y_j + strength * sum_g [sum_{j in G_g} y_j is even] )

    with ``U [H, D]`` of N(0, 4/D) entries (pre-activations of standard deviation about 2, so
    the tanh saturates), ``c [H]`` of N(0, 1), ``V [M, H]`` of N(0, 1/H). The parity factor of a
    group of 3 is, in ±1 spins ``s_j = 2 y_j - 1``, ``(1 - s_1 s_2 s_3) / 2``: a pure
    third-order interaction with no pairwise part, so a pairwise model (Ising, or a classifier
    chain whose links are linear in the earlier labels: XOR is not linearly separable) cannot
    represent it. With ``offset > 0`` the labels tend to be on, the parity then favours
    *pairs* of a group, and a label's marginal is often about 2/3 although the full group
    (odd) is almost never drawn: thresholding the marginals at 0.5 predicts it, while the joint
    mode predicts a pair (the failure of Dembczyński, Waegeman, Cheng and Hüllermeier, 2012,
    "On label dependence and loss minimization in multi-label classification", Machine
    Learning 88, here with dependence no pairwise model can express).

    ``p(y|x)`` is returned for all ``2^M`` sets, computed by enumeration (log-sum-exp over the
    sets). The groups are independent given x, so it also factorises: ``p(y|x) = prod_g
    p(y_G | x)``, each over ``2^group_size`` sets, and the Bayes-optimal expected subset
    accuracy is ``mean_i prod_g max_{y_G} p(y_G | x_i)`` (the tests check both). With the
    defaults (n=2000, D=10, M=6) the true mode has expected subset accuracy 0.401 and the
    thresholded true marginals 0.281 (seed 0; seeds 1 and 2: 0.375 vs 0.260 and 0.411 vs
    0.323), measured with::

        from comorbid.data.synthetic import *
        d, p = parity_label_problem(seed=0)
        bayes_optimal_subset_accuracy(p), expected_subset_accuracy(p, threshold_marginals(p, 6))

    The labels are sampled by the generative story's own route, not from the enumerated
    probabilities: each group is drawn as independent Bernoulli(sigmoid(a_j(x))) labels and
    accepted with probability 1 if its parity is even and ``exp(-strength)`` if odd
    (rejection sampling, exact for the density above), so that tests comparing samples with
    ``true_set_probs`` check the formula.

    Args:
        n: number of rows ``N``.
        n_features: ``D``.
        n_labels: ``M``, a multiple of ``group_size``, at most 12 (``2^M`` sets are enumerated).
        seed: one seed for the network, the groups, ``x`` and the samples.
        strength: log-odds of an even over an odd group, other things equal (0: no dependence
            between labels given x).
        sharpness: scale of x's effect on the labels' tendencies (0: p(y|x) = p(y)).
        offset: the tendencies' common shift; positive makes labels tend to be on and the
            parity then bites (pairs against the full group).
        group_size: labels per parity group, at least 3 (a parity of 2 labels is pairwise).
        hidden: ``H``, tanh units of the network.

    Returns:
        ``(dataset, true_set_probs)`` as :func:`dependent_label_problem`: dense ``inputs [N, D]``,
        labels ``[N, M]`` sampled from p(y|x), ids ``"0".."N-1"``, label names
        ``"y0".."y{M-1}"``; and ``true_set_probs [N, 2^M]`` in :func:`label_sets` order.
    """
    if group_size < 3:
        raise ValueError(f"Expected group_size >= 3 (parity of 2 labels is a pairwise dependence), got {group_size}")
    if not group_size <= n_labels <= MAX_LABELS or n_labels % group_size:
        raise ValueError(
            f"Expected n_labels a multiple of group_size={group_size} and at most {MAX_LABELS}, got {n_labels}"
        )
    if n < 1 or n_features < 1 or hidden < 1:
        raise ValueError(f"Expected n, n_features and hidden >= 1, got n={n}, n_features={n_features}, hidden={hidden}")
    rng = np.random.default_rng(seed)
    groups, features, tendencies = _parity_tendencies(
        rng, n, n_features, n_labels, group_size, hidden, sharpness, offset
    )

    sets = label_sets(n_labels)  # [2^M, M]
    even_groups = (sets[:, groups].sum(-1) % 2 == 0).sum(-1)  # [2^M]
    log_weights = tendencies @ sets.T + strength * even_groups  # [N, 2^M]
    log_weights -= log_weights.max(axis=1, keepdims=True)
    true_set_probs = np.exp(log_weights)
    true_set_probs /= true_set_probs.sum(axis=1, keepdims=True)

    labels = np.zeros((n, n_labels), dtype=np.int8)
    on_probs = 1.0 / (1.0 + np.exp(-tendencies))  # [N, M]
    accept_odd = np.exp(-strength) if strength >= 0 else 1.0
    accept_even = 1.0 if strength >= 0 else np.exp(strength)
    for group in groups:
        pending = np.arange(n)
        while len(pending):
            draw = rng.random((len(pending), group_size)) < on_probs[pending][:, group]
            even = draw.sum(1) % 2 == 0
            accepted = rng.random(len(pending)) < np.where(even, accept_even, accept_odd)
            labels[np.ix_(pending[accepted], group)] = draw[accepted]
            pending = pending[~accepted]
    dataset = MultiLabelDataset(
        ids=[str(i) for i in range(n)],
        inputs=features,
        labels=labels,
        label_names=[f"y{j}" for j in range(n_labels)],
        feature_names=[f"x{d}" for d in range(n_features)],
        name="parity-labels",
    )
    return dataset, true_set_probs


def _parity_tendencies(
    rng: np.random.Generator, n: int, n_features: int, n_labels: int, group_size: int, hidden: int,
    sharpness: float, offset: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first draws of :func:`parity_label_problem`: ``groups [M / group_size, group_size]``
    (label indices), ``features [N, D]`` and the tendencies ``a(x) [N, M]`` (the tests rebuild
    the closed form from them)."""
    groups = rng.permutation(n_labels).reshape(-1, group_size)
    in_weights = rng.normal(size=(hidden, n_features)) * (2.0 / np.sqrt(n_features))  # U [H, D]
    in_bias = rng.normal(size=hidden)  # c [H]
    out_weights = rng.normal(size=(n_labels, hidden)) / np.sqrt(hidden)  # V [M, H]
    features = rng.normal(size=(n, n_features))
    tendencies = offset + sharpness * np.tanh(features @ in_weights.T + in_bias) @ out_weights.T
    return groups, features, tendencies


# ---------------------------------------------------------------------------------------------
# A large synthetic ICD-10-CM coding set (scale benchmarks)

#: Most codes :func:`synthetic_icd10_set` assigns to one note, and most words of a code's
#: description in a note: together they bound the words of a note's code mentions (below
#: 1,500 words).
MAX_CODES_PER_NOTE = 20
MAX_DESCRIPTION_WORDS = 20
_MAX_NEGATED_PER_NOTE = 5

# Light paraphrase of descriptions: a clinician's words for the coder's (lowercase phrases;
# "" drops the word).
_SYNONYMS = {
    "unspecified": "",
    "malignant neoplasm": "cancer",
    "neoplasm": "tumor",
    "diabetes mellitus": "diabetes",
    "essential (primary) hypertension": "hypertension",
    "hypertension": "high blood pressure",
    "myocardial infarction": "heart attack",
    "chronic kidney disease": "CKD",
    "chronic obstructive pulmonary disease": "COPD",
    "without": "w/o",
    "with": "w/",
    "left": "L",
    "right": "R",
    "disorder": "disease",
    "infection": "infx",
    "fracture": "fx",
    "initial encounter": "initial visit",
    "subsequent encounter": "follow-up visit",
    "other": "",
    "acute": "new",
    "abdominal": "abd",
    "history": "hx",
}
_MENTIONS = (
    "Assessment: {}.",
    "Patient has {}.",
    "Diagnosed with {}.",
    "Findings consistent with {}.",
    "Known {}, stable on current regimen.",
    "Continues to be treated for {}.",
    "Problem list includes {}.",
    "Workup confirmed {}.",
)
_NEGATED = ("No evidence of {}.", "Denies {}.", "Negative for {}.", "No signs of {}.", "Ruled out {}.")
_FILLERS = (
    "Vital signs were reviewed and are within normal limits.",
    "The patient is alert and oriented and in no acute distress.",
    "Medications were reconciled with the patient and the pharmacy.",
    "Labs drawn this morning were reviewed with the team.",
    "The patient tolerated the diet without nausea or vomiting.",
    "Will follow up in clinic in two weeks.",
    "Discussed the plan of care with the patient and family, who agree with it.",
    "Physical therapy evaluated the patient and recommends home exercises.",
    "Pain is controlled on the current regimen.",
    "Skin is warm and dry.",
    "Heart has a regular rate and rhythm.",
    "Lungs are clear to auscultation bilaterally.",
    "Abdomen is soft and nontender.",
    "Extremities show no edema.",
    "Neurologic examination is nonfocal.",
    "The patient ambulates independently with a steady gait.",
    "Social work was consulted for discharge planning.",
    "Code status was confirmed as full code.",
    "Return precautions were reviewed in detail.",
    "The patient slept well overnight.",
    "Intake and output were recorded by nursing.",
    "Imaging from the prior admission was compared.",
    "The case was discussed at the multidisciplinary meeting this afternoon.",
    "Allergies were reviewed and are unchanged.",
    "The patient lives at home with a spouse and is independent in daily activities.",
    "Nutrition recommends continuing the current diet.",
    "Blood pressure readings at home have been reviewed.",
    "Smoking cessation was encouraged.",
    "Vaccination history was reviewed and updated.",
    "The patient asked appropriate questions, which were answered.",
    "Nursing notes from the last shift were reviewed.",
    "No new complaints this morning.",
    "Plan is to continue the current management and reassess tomorrow.",
    "Outside records were requested.",
    "The patient was seen and examined at the bedside.",
    "Family history was reviewed and is noncontributory.",
)
_SEXES = ("woman", "man")


def synthetic_icd10_set(
    n_notes: int = 2000,
    n_codes: int = 1000,
    seed: int = 0,
    *,
    codes_per_note: float = 6.0,
    zipf_exponent: float = 1.0,
    n_profiles: int | None = None,
    profile_share: float = 0.6,
    negations_per_note: float = 1.5,
    min_words: int = 300,
    max_words: int = 1500,
) -> MultiLabelDataset:
    """Clinical notes coded with real ICD-10-CM codes, at any scale (for scale benchmarks).

    The generative story, sampled with vectorised numpy (one pass per note only to join its text):

    - **Codes.** ``n_codes`` billable codes of ICD-10-CM (the leaves of ``simple-icd-10-cm``'s
      tree, with their descriptions), drawn without replacement with each chapter's share
      proportional to the square root of its size, so that the injury chapter (55% of all
      codes, mostly 7th-character extensions) does not swamp the others.
    - **Frequencies.** Each code has a popularity ``~ 1 / rank^zipf_exponent`` over a random
      order (Zipf's law): a few codes are common and many are seen once or twice, as in
      real coding.
    - **Comorbidity profiles.** ``n_profiles`` (default ``max(2, n_codes // 20)``) latent
      patient profiles of 16 codes, three quarters from one home chapter and the rest from
      anywhere, drawn by popularity and weighted by its square root. A note has one profile
      (30%: two, a comorbidity between chapters) and ``1 + Poisson(codes_per_note - 1)``
      code draws (at most :data:`MAX_CODES_PER_NOTE`); each draw comes from a profile with
      probability ``profile_share``, otherwise from the popularity.
    - **Exclusions.** Some symptom codes (chapter 18, R00-R99) are paired with a diagnosis of
      a profile that also holds the symptom; a symptom is not coded when its explaining
      diagnosis is (the rule of the ICD-10-CM guidelines, Section I.B.4-5), but the note still
      mentions it.
    - **Text.** A header, each mentioned code's description 1-2 times in a mention sentence
      ("Diagnosed with ...", "Known ..., stable on current regimen.") in one of three forms:
      as written (lowercase), with synonyms from a small list ("malignant neoplasm" ->
      "cancer", "with" -> "w/"), or with the parts around commas reordered and a word
      dropped; descriptions cut to :data:`MAX_DESCRIPTION_WORDS` words. Then
      ``Poisson(negations_per_note)`` (at most 5) negated mentions of codes *not* assigned
      or mentioned ("No evidence of ...", "Denies ..."), half from the note's profile, and
      filler clinical sentences up to a length drawn from a log-normal around 650 words,
      clipped to ``[min_words, max_words]``; the body's sentences are shuffled.

    Generating 50,000 notes x 5,000 codes took 6.8 s and 1.3 GB peak RSS on the project's
    2-core machine (command in ``benchmarks/README.md``, "Scale").

    Args:
        n_notes: ``N``.
        n_codes: ``M``, at most the number of billable codes (about 74,000).
        seed: the same seed gives the same codes, profiles, labels and text.
        codes_per_note: mean code draws per note (before duplicates and exclusions).
        zipf_exponent: exponent of the code popularity.
        n_profiles: number of comorbidity profiles.
        profile_share: chance that a code draw comes from the note's profile.
        negations_per_note: mean negated mentions per note.
        min_words, max_words: bounds of a note's length in words (``str.split``).

    Returns:
        A text dataset: ids ``"icd10-000000"``..., label names the codes (with dots) sorted as
        strings, ``labels`` the dense ``[N, M]`` ``np.int8`` matrix that
        :class:`MultiLabelDataset` requires, which takes ``N * M`` bytes (250 MB at 50,000 x
        5,000; the container's 0/1 check briefly needs three times as much). ``extras``:
        ``"negated_codes"`` and ``"uncoded_mentions"`` (per note, the codes mentioned
        negated, and the symptoms mentioned but not coded because their diagnosis is), and
        ``"profiles"`` (``[N, 2]`` profile indices, ``-1`` for no second profile).
    """
    if n_notes < 1 or n_codes < 2:
        raise ValueError(f"Expected n_notes >= 1 and n_codes >= 2, got n_notes={n_notes}, n_codes={n_codes}")
    if not 1.0 <= codes_per_note <= MAX_CODES_PER_NOTE:
        raise ValueError(f"Expected 1 <= codes_per_note <= {MAX_CODES_PER_NOTE}, got {codes_per_note}")
    if not 0.0 <= profile_share <= 1.0:
        raise ValueError(f"Expected 0 <= profile_share <= 1, got {profile_share}")
    filler_words = np.array([len(sentence.split()) for sentence in _FILLERS])
    longest_mentions = _longest_mentions()
    if min_words < 1 or max_words < max(min_words, longest_mentions) + filler_words.max():
        raise ValueError(
            f"Expected 1 <= min_words and max_words >= max(min_words, {longest_mentions}) + {filler_words.max()} "
            f"(the longest possible code mentions and one filler sentence), got min_words={min_words}, "
            f"max_words={max_words}"
        )
    rng = np.random.default_rng(seed)
    codes, chapters = _icd10_billable_codes()
    if n_codes > len(codes):
        raise ValueError(f"Expected n_codes <= {len(codes)} (the billable ICD-10-CM codes), got {n_codes}")
    label_names, chapter_of = _pick_codes(codes, chapters, n_codes, rng)
    variants, variant_words = _description_variants(label_names, rng)  # [M * 3] texts, [M, 3] words

    popularity = 1.0 / (rng.permutation(n_codes) + 1.0) ** zipf_exponent
    popularity /= popularity.sum()
    profile_codes, profile_cdf, symptom_of = _profiles(chapter_of, popularity, n_profiles, rng)
    n_profiles = len(profile_codes)
    profile_prior = 1.0 / np.arange(1, n_profiles + 1) ** 0.7
    profile_prior /= profile_prior.sum()

    # -- codes of each note: keys row * M + code, sorted (the flat index of the dense matrix)
    n_draws = np.minimum(1 + rng.poisson(codes_per_note - 1.0, n_notes), MAX_CODES_PER_NOTE)
    draw_row = np.repeat(np.arange(n_notes), n_draws)
    first = rng.choice(n_profiles, n_notes, p=profile_prior)
    second = np.where(rng.random(n_notes) < 0.3, rng.choice(n_profiles, n_notes, p=profile_prior), -1)
    use_second = (second[draw_row] >= 0) & (rng.random(len(draw_row)) < 0.5)
    draw_profile = np.where(use_second, second[draw_row], first[draw_row])
    code = np.where(
        rng.random(len(draw_row)) < profile_share,
        _draw_from_profiles(draw_profile, profile_codes, profile_cdf, rng),
        rng.choice(n_codes, len(draw_row), p=popularity),
    )
    mentioned = np.unique(draw_row.astype(np.int64) * n_codes + code)
    # A symptom whose explaining diagnosis is in the same note is mentioned, not coded.
    rows, columns = np.divmod(mentioned, n_codes)
    diagnosis = symptom_of[columns]
    explained = (diagnosis >= 0) & _contains(mentioned, rows * n_codes + diagnosis)
    coded = mentioned[~explained]

    # -- negated mentions: codes neither coded nor mentioned
    n_negated = np.minimum(rng.poisson(negations_per_note, n_notes), _MAX_NEGATED_PER_NOTE)
    negated_row = np.repeat(np.arange(n_notes), n_negated)
    candidate = np.where(
        rng.random(len(negated_row)) < 0.5,
        _draw_from_profiles(first[negated_row], profile_codes, profile_cdf, rng),
        rng.choice(n_codes, len(negated_row), p=popularity),
    )
    negated = np.unique(negated_row.astype(np.int64) * n_codes + candidate)
    negated = negated[~_contains(mentioned, negated)]

    texts = _write_notes(n_notes, n_codes, mentioned, negated, variants, variant_words, filler_words,
                         min_words, max_words, rng)
    labels = np.zeros((n_notes, n_codes), dtype=np.int8)
    labels.ravel()[coded] = 1
    names = np.asarray(label_names)
    return MultiLabelDataset(
        ids=[f"icd10-{i:06d}" for i in range(n_notes)],
        inputs=texts,
        labels=labels,
        label_names=list(label_names),
        extras={
            "negated_codes": _codes_per_row(negated, n_notes, n_codes, names),
            "uncoded_mentions": _codes_per_row(mentioned[explained], n_notes, n_codes, names),
            "profiles": np.stack([first, second], axis=1),
        },
        name="synthetic-icd10",
    )


def _icd10_billable_codes() -> tuple[list[str], list[str]]:
    """Every billable ICD-10-CM code (a leaf of the tree; no block names) and its chapter."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its loader uses importlib.resources.read_text
        import simple_icd_10_cm as cm

    codes, chapters = [], []
    for chapter in (item for item in cm.get_all_codes(True) if cm.is_chapter(item)):
        for code in cm.get_descendants(chapter):
            if "-" not in code and cm.is_leaf(code):
                codes.append(code)
                chapters.append(chapter)
    return codes, chapters


def _pick_codes(codes: list[str], chapters: list[str], n_codes: int, rng: np.random.Generator):
    """``n_codes`` codes, sorted, each chapter's share proportional to sqrt(its size); and each
    picked code's chapter (``[M]`` strings, ``"1"``-``"22"``)."""
    chapters = np.asarray(chapters)
    _, chapter_index, sizes = np.unique(chapters, return_inverse=True, return_counts=True)
    weight = 1.0 / np.sqrt(sizes[chapter_index])
    picked = rng.choice(len(codes), n_codes, replace=False, p=weight / weight.sum())
    picked = sorted(picked, key=lambda i: codes[i])
    return [codes[i] for i in picked], chapters[picked]


def _description_variants(label_names: list[str], rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Three forms of each code's description (as written, synonyms, reordered with a word
    dropped), lowercase and cut to MAX_DESCRIPTION_WORDS words: ``[M * 3]`` texts (code ``j``'s
    at ``3j..3j+2``) and ``[M, 3]`` word counts."""
    import re
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm as cm

    pattern = re.compile(r"\b(" + "|".join(re.escape(p) for p in sorted(_SYNONYMS, key=len, reverse=True)) + r")\b")
    texts: list[str] = []
    for code in label_names:
        plain = cm.get_description(code).lower()
        synonyms = pattern.sub(lambda match: _SYNONYMS[match.group(1)], plain)
        reordered = " ".join(part.strip() for part in reversed(plain.split(","))).split()
        if len(reordered) > 3:
            del reordered[1 + rng.integers(len(reordered) - 1)]
        for text in (plain, synonyms, " ".join(reordered)):
            words = text.replace(" ,", ",").split()[:MAX_DESCRIPTION_WORDS]
            texts.append(" ".join(words).strip(" ,") or plain.split()[0])
    counts = np.array([len(text.split()) for text in texts]).reshape(-1, 3)
    return texts, counts


def _profiles(chapter_of: np.ndarray, popularity: np.ndarray, n_profiles: int | None, rng: np.random.Generator):
    """Comorbidity profiles: ``[K, L]`` codes, ``[K, L]`` cumulative draw probabilities, and
    ``symptom_of [M]``: the diagnosis that explains symptom code ``j`` (``-1`` for none)."""
    n_codes = len(popularity)
    n_profiles = max(2, n_codes // 20) if n_profiles is None else n_profiles
    if n_profiles < 1:
        raise ValueError(f"Expected n_profiles >= 1, got {n_profiles}")
    size = min(16, n_codes)
    homes = chapter_of[rng.choice(n_codes, n_profiles, p=popularity)]
    profile_codes = np.empty((n_profiles, size), dtype=np.int64)
    for k, home in enumerate(homes):  # one pass per profile, not per note
        local = np.flatnonzero(chapter_of == home)
        n_local = min(len(local), round(0.75 * size))
        inside = rng.choice(local, n_local, replace=False, p=popularity[local] / popularity[local].sum())
        outside = rng.choice(n_codes, size - n_local, p=popularity)
        profile_codes[k] = np.concatenate([inside, outside])
    # Symptom/diagnosis pairs (chapter 18 is "Symptoms, signs and abnormal findings"): the
    # symptom joins the profile of its diagnosis, with the same weight, so that both co-occur.
    symptom_of = np.full(n_codes, -1, dtype=np.int64)
    symptoms = rng.permutation(np.flatnonzero(chapter_of == "18"))
    for symptom, k in zip(symptoms[: max(1, n_profiles // 4)], rng.permutation(n_profiles)):
        diagnosis = profile_codes[k, 0]
        if chapter_of[diagnosis] != chapter_of[symptom] and symptom_of[diagnosis] < 0:
            symptom_of[symptom] = diagnosis
            profile_codes[k, -1] = symptom
    weight = np.sqrt(popularity[profile_codes])
    weight[:, -1] = np.where(symptom_of[profile_codes[:, -1]] >= 0, weight[:, 0], weight[:, -1])
    cdf = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
    return profile_codes, cdf, symptom_of


def _draw_from_profiles(profile: np.ndarray, profile_codes: np.ndarray, cdf: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """One code per entry of ``profile [T]`` by its profile's probabilities (inverse CDF)."""
    u = rng.random(len(profile))
    slot = np.minimum((u[:, None] > cdf[profile]).sum(axis=1), profile_codes.shape[1] - 1)
    return profile_codes[profile, slot]


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``sorted_keys`` (sorted, unique)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    position = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[position] == keys


def _longest_mentions() -> int:
    """Most words a note's header, code mentions and negated mentions can take."""
    most = max(len(template.format("x").split()) - 1 for template in _MENTIONS)
    most_negated = max(len(template.format("x").split()) - 1 for template in _NEGATED)
    header = len(_header(99, "woman").split())
    return (header + MAX_CODES_PER_NOTE * 2 * (most + MAX_DESCRIPTION_WORDS)
            + _MAX_NEGATED_PER_NOTE * (most_negated + MAX_DESCRIPTION_WORDS))


def _header(age: int, sex: str) -> str:
    return f"HISTORY OF PRESENT ILLNESS: {age}-year-old {sex} seen for evaluation."


def _write_notes(n_notes, n_codes, mentioned, negated, variants, variant_words, filler_words, min_words, max_words,
                 rng: np.random.Generator) -> list[str]:
    """The notes' texts: header, then shuffled code mentions, negated mentions and fillers."""
    # Code mentions: each mentioned code once or twice, in a random form and template.
    repeats = 1 + (rng.random(len(mentioned)) < 0.3)
    mention = np.repeat(mentioned, repeats)
    mention_row, mention_code = np.divmod(mention, n_codes)
    mention_variant = mention_code * 3 + rng.integers(3, size=len(mention))
    mention_template = rng.integers(len(_MENTIONS), size=len(mention))
    template_words = np.array([len(t.format("x").split()) - 1 for t in _MENTIONS])
    words = np.bincount(mention_row, variant_words.ravel()[mention_variant] + template_words[mention_template],
                        minlength=n_notes)
    negated_row, negated_code = np.divmod(negated, n_codes)
    negated_template = rng.integers(len(_NEGATED), size=len(negated))
    negated_words = np.array([len(t.format("x").split()) - 1 for t in _NEGATED])
    words += np.bincount(negated_row, variant_words[negated_code, 0] + negated_words[negated_template],
                         minlength=n_notes)
    ages = rng.integers(18, 95, size=n_notes)
    sexes = rng.integers(2, size=n_notes)
    words += len(_header(99, "woman").split())

    # Fillers up to the target length: enough rows of random filler sentences that their
    # cumulative length passes the largest need; a note takes the shortest prefix that
    # reaches its need (overshooting by less than one sentence).
    target = np.clip(np.exp(rng.normal(np.log(650.0), 0.45, size=n_notes)), min_words,
                     max_words - filler_words.max()).astype(np.int64)
    need = np.maximum(target - words, 0)
    depth = int(need.max() // filler_words.min()) + 1
    fillers = rng.integers(len(_FILLERS), size=(n_notes, depth), dtype=np.int16)
    reached = np.cumsum(filler_words[fillers], axis=1)
    n_fillers = np.where(need > 0, (reached < need[:, None]).sum(axis=1) + 1, 0)

    mention_texts = [_MENTIONS[t].format(variants[v]) for t, v in zip(mention_template.tolist(), mention_variant.tolist())]
    negated_texts = [_NEGATED[t].format(variants[3 * c]) for t, c in zip(negated_template.tolist(), negated_code.tolist())]
    mention_start = np.searchsorted(mention_row, np.arange(n_notes + 1))
    negated_start = np.searchsorted(negated_row, np.arange(n_notes + 1))
    order_keys = rng.random(int(mention_start[-1] + negated_start[-1] + n_fillers.sum()))
    texts = []
    used = 0
    for i in range(n_notes):  # per note: only list joins of its own sentences
        body = (mention_texts[mention_start[i]:mention_start[i + 1]]
                + negated_texts[negated_start[i]:negated_start[i + 1]]
                + [_FILLERS[f] for f in fillers[i, : n_fillers[i]].tolist()])
        order = np.argsort(order_keys[used : used + len(body)])
        used += len(body)
        texts.append(" ".join([_header(ages[i], _SEXES[sexes[i]])] + [body[j] for j in order.tolist()]))
    return texts


def _codes_per_row(keys: np.ndarray, n_notes: int, n_codes: int, names: np.ndarray) -> list[list[str]]:
    """Sorted flat keys ``row * M + code`` as one list of code names per row."""
    rows, columns = np.divmod(keys, n_codes)
    start = np.searchsorted(rows, np.arange(n_notes + 1))
    return [names[columns[start[i]:start[i + 1]]].tolist() for i in range(n_notes)]
