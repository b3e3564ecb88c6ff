"""Ming et al. 2019 (face recognition with facial expression): the cross-validated harness of Tables 2-4 and
Figures 2, 4-7 (`dynamic-mtl run`, `report`, `study`)."""
