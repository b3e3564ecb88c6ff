"""The numbers Fang et al. 2017 report (accuracy = mean of positive- and negative-class accuracy, %).

Table 3 is garbled in the extracted text; we read it as two blocks (original imbalanced training set,
then resampled minority), each with ST / MT / DMT rows, which matches the bold (best) entries.
Table 6 is read as the change of each sender's share of a receiver's input (alpha_ij / sum_k alpha_ik,
self included; see dynamic_mtl.ttc.shares), which has a diagonal; we copy it as printed.
"""

from __future__ import annotations

#: Table 4: CelebA, 7 attributes. (LNet+ANet w/o pretraining [ST baseline], MT, DMT, DMT after removal).
TABLE4 = {
    "Goatee": (92.0, 93.9, 94.9, 93.1),
    "Heavy_Makeup": (85.0, 89.7, 89.8, 89.1),
    "High_Cheekbones": (84.0, 86.0, 86.5, 85.8),
    "No_Beard": (92.0, 91.9, 92.6, 91.2),
    "Sideburns": (91.0, 93.1, 93.9, None),
    "Smiling": (88.0, 91.8, 92.1, 91.7),
    "Wearing_Lipstick": (90.0, 92.7, 93.2, None),
}
TABLE4_COLUMNS = ("ST (LNet+ANet w/o)", "MT", "DMT", "DMT (tasks removal)")

#: Table 5: CIFAR-10 as 5 binary tasks (ST, MT, DMT).
TABLE5 = {
    "airplane.ship": (89.9, 90.4, 91.2),
    "automobile.truck": (88.4, 90.0, 90.0),
    "bird.frog": (89.2, 89.6, 90.7),
    "cat.dog": (73.8, 73.9, 73.9),
    "deer.horse": (88.8, 89.1, 89.4),
}
TABLE5_COLUMNS = ("ST", "MT", "DMT")

#: Table 3: two-task groups (Bald+Wearing_Hat, Mustache+Goatee); minority proportion and
#: {regime: {model: (Bald, Wearing_Hat, Mustache, Goatee)}}.
TABLE3_TASKS = ("Bald", "Wearing_Hat", "Mustache", "Goatee")
TABLE3_MINORITY = (0.02, 0.05, 0.04, 0.06)
TABLE3 = {
    "imbalanced": {"ST": (56.4, 82.2, 58.6, 73.3), "MT": (79.4, 89.1, 60.3, 78.7), "DMT": (80.1, 91.2, 62.0, 79.3)},
    "resampled": {"ST": (95.5, 95.3, 90.9, 93.7), "MT": (96.2, 95.5, 91.2, 94.1), "DMT": (96.2, 96.0, 91.9, 94.1)},
}

#: Table 6: change of TTC weights (layer 6 -> 7) after removing Sideburns and Wearing_Lipstick, in
#: percentage points; rows = "From" (sender), columns = "To" (receiver).
TABLE6_TASKS = ("Goatee", "Heavy_Makeup", "High_Cheekbones", "No_Beard", "Smiling")
TABLE6 = (
    (6, 10, 4, 7, 3),
    (11, 15, 3, 3, 8),
    (3, 0, 9, 1, 1),
    (-2, 7, 3, 9, 3),
    (1, 2, -2, 0, -2),
)

#: Figure 6 / Sec. 4.4: incremental addition of Smiling reaches error 0.1 "about 4 times faster".
FIGURE6_SPEEDUP = 4.0
