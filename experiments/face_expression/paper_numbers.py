"""The paper's numbers (Ming et al. 2019, Tables 2-4; accuracy %), by our row labels."""

from __future__ import annotations

from data_prep import datasets

#: Table 2, face verification accuracy on CK+ and Oulu-CASIA.
TABLE2 = {
    "ckplus": {
        "Single-task (pretrained)": 98.00,
        "Single-task (fine-tuning)": 98.50,
        "Static MTL": 98.50,
        "Naive dynamic MTL": 98.15,
        "Proposed dynamic MTL": 99.00,
    },
    "oulu": {
        "Single-task (pretrained)": 92.60,
        "Single-task (fine-tuning)": 97.71,
        "Static MTL": 98.00,
        "Naive dynamic MTL": 95.14,
        "Proposed dynamic MTL": 99.14,
    },
}
#: Table 3 (CK+) and Table 4 (Oulu-CASIA), expression recognition accuracy.
TABLE3 = {"Single-task": 98.21, "Static MTL": 99.11, "Naive dynamic MTL": 99.10, "Proposed dynamic MTL": 99.50}
TABLE4 = {"Single-task": 85.42, "Static MTL": 89.60, "Naive dynamic MTL": 88.89, "Proposed dynamic MTL": 89.60}


def paper_dataset(dataset: str, expression_protocol: str) -> str:
    """Which paper column our run is set beside (the dataset's ``paper_column``, or the expression
    protocol's dataset's: ``oulu6`` -> oulu); see data_prep/datasets.py."""
    return datasets.paper_column(dataset, expression_protocol)
