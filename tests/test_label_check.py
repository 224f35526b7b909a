"""The label-set check at initialize (issue 30, spacy_hmtl.gold_check): gold annotation a
head ignores in training or can never predict (a label outside its given label set, a
relation argument its entity source never gives it, a span wider than its candidates) is
reported with counts in one GoldLabelWarning per head, not silently dropped."""
import warnings
from typing import Dict, List, Optional

from spacy.language import Language

from helpers import DOC_SPECS, make_examples, make_reference_doc, nlp_from_config
from spacy_hmtl import GoldLabelWarning


def initialize_warnings(nlp: Language, examples=None) -> Dict[str, List[str]]:
    """The lines of each head's GoldLabelWarning at ``nlp.initialize`` (head -> problem
    lines, each "COUNT (LABEL: N, ...): PROBLEM"); a head warns at most once."""
    examples = examples if examples is not None else make_examples(nlp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nlp.initialize(lambda: examples)
    found: Dict[str, List[str]] = {}
    for warning in caught:
        if issubclass(warning.category, GoldLabelWarning):
            first, *lines = str(warning.message).splitlines()
            head = first[1 : first.index("]")]
            assert head not in found, f"{head} warned twice"
            found[head] = [line.strip()[2:] for line in lines]
    return found


def tiny(overrides: Optional[dict] = None, labels: Optional[dict] = None) -> Language:
    """The untrained tiny pipeline, with ``[initialize.components]`` settings ``labels``."""
    nlp = nlp_from_config(overrides=overrides)
    nlp.config["initialize"]["components"] = labels or {}
    return nlp


def test_clean_data_does_not_warn():
    assert initialize_warnings(tiny()) == {}


def test_labels_the_config_never_saw_and_argument_types_never_predicted():
    """The NER head is given two of the four entity labels: the other entities are
    counted, and so are the relations with an argument typed with one of them (hmtl_ner
    never predicts it into doc.ents, the relation head's entity source)."""
    found = initialize_warnings(tiny(labels={"hmtl_ner": {"labels": ["Material", "Method"]}}))
    assert sorted(found) == ["hmtl_ner", "hmtl_relations"]
    assert found["hmtl_ner"] == [
        "4 (Metric: 2, Generic: 1, OtherScientificTerm: 1): gold entities labelled outside the head's labels "
        "(Material, Method), left out of the loss, never predicted"
    ]
    never = "gold relations with an argument typed {!r}, which hmtl_ner never predicts into doc.ents (labels: Material, Method)"
    assert found["hmtl_relations"] == [
        "2 (EVALUATE-FOR: 2): " + never.format("Metric"),
        "1 (USED-FOR: 1): " + never.format("Generic"),
        "1 (PART-OF: 1): " + never.format("OtherScientificTerm"),
    ]


def test_each_head_counts_what_it_drops():
    found = initialize_warnings(
        tiny(
            overrides={"components.hmtl_mentions.model.max_width": 1, "components.hmtl_coref.model.max_width": 2},
            labels={"hmtl_mentions": {"labels": ["NOM", "PROP"]}, "hmtl_relations": {"labels": ["USED-FOR"]}},
        )
    )
    assert found == {
        "hmtl_mentions": [
            '4 (PRON: 4): gold mentions labelled outside the head\'s labels (NOM, PROP), trained as "no mention"',
            "6 (NOM: 5, PROP: 1): gold mentions wider than max_width=1 tokens, never candidates "
            "(raise max_width to cover them; cost grows linearly with it)",
        ],
        "hmtl_relations": [
            '3 (EVALUATE-FOR: 2, PART-OF: 1): gold relations labelled outside the head\'s labels (USED-FOR), '
            'trained as "no relation"'
        ],
        "hmtl_coref": [
            "1: gold coreference mentions wider than max_width=2 tokens, never candidates "
            "(raise the model's max_width to cover them; their links are lost)"
        ],
    }


def test_relation_argument_outside_the_entity_source():
    """A relation whose argument is no entity: at inference the arguments are doc.ents'
    spans, so it is never predicted. A doc without entity annotation is not compared."""
    nlp = tiny()
    words, sents, ents, mentions, relations, clusters = DOC_SPECS[0]
    # "We" (0, 1) is a mention, not an entity
    spec = (words, sents, ents, mentions, relations + [(0, 1, 3, 5, "USED-FOR")], clusters)
    unannotated = make_reference_doc(nlp.vocab, (words, sents, [], [], [(0, 1, 3, 5, "USED-FOR")], []))
    unannotated.set_ents([], default="missing")  # entities not annotated: nothing to compare
    refs = [make_reference_doc(nlp.vocab, spec), unannotated] + [make_reference_doc(nlp.vocab, s) for s in DOC_SPECS[1:]]
    found = initialize_warnings(nlp, make_examples(nlp, refs))
    assert found == {
        "hmtl_relations": ["1 (USED-FOR: 1): gold relations with an argument that is not a span of doc.ents "
                           "(the arguments at inference)"]
    }


def test_argument_types_outside_the_given_entity_labels():
    """Without a pipe whose labels say what the entity source holds, the types are checked
    against the head's entity_labels (given at initialize: others read as unknown)."""
    nlp = tiny()
    relations = nlp.get_pipe("hmtl_relations")
    relations.cfg["entity_labels"] = ["Method"]
    problem = relations.argument_type_problem(None)
    assert problem("Method") is None
    assert problem("Metric") == ("gold relations with an argument typed 'Metric', outside the head's "
                                 "entity_labels (Method): read as an unknown type")
    # with the pipeline: its hmtl_ner (once initialized) decides
    nlp.get_pipe("hmtl_ner").add_label("Metric")
    assert nlp.get_pipe("hmtl_relations").argument_type_problem(nlp)("Metric") is None


def test_the_warning_can_be_filtered():
    nlp = tiny(labels={"hmtl_ner": {"labels": ["Method"]}})
    examples = make_examples(nlp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=GoldLabelWarning)
        nlp.initialize(lambda: examples)
    assert nlp.get_pipe("hmtl_ner").labels == ("Method",)
