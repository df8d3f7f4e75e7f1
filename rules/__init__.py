"""Pure calculations and eligibility rules: labour productivity and withdrawal (辞退) checks."""
