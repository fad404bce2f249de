"""Writes answer_pairs.jsonl: hand-labelled (gold, predicted, equivalent, form) pairs.

Labels are what a careful human grader of competition/GSM-style math would decide. Regenerate with
`python tests/data/make_answer_pairs.py`; the JSONL is the committed artifact.
"""

import json
import os

Y, N = True, False
PAIRS = {
    "integer": [
        ("42", "42", Y), ("42", "42.0", Y), ("42", "+42", Y), ("42", "043", N), ("-7", "-7", Y), ("-7", "7", N),
        ("0", "-0", Y), ("100", "1e2", Y), ("12", "12.00", Y), ("12", "12.01", N), ("3", "\\boxed{3}", Y),
        ("5", "{5}", Y), ("18", "18.", Y), ("1", "01", Y), ("72", "27", N), ("-3", "- 3", Y), ("6", "3!", Y),
        ("24", "4!", Y), ("10", "\\binom{5}{2}", Y), ("2", "\\sqrt{4}", Y), ("3", "\\log_2 8", Y), ("9", "3^2", Y),
        ("8", "2^{3}", Y), ("16", "2^5", N), ("7", "\\textbf{7}", Y), ("11", "eleven", N),
    ],
    "decimal": [
        ("0.5", ".5", Y), ("0.5", "0.50", Y), ("0.5", "0.05", N), ("3.14", "3.140", Y), ("2.5", "2.49", N),
        ("-0.25", "-\\frac{1}{4}", Y), ("0.125", "1/8", Y), ("1.2", "6/5", Y), ("0.333", "1/3", N),
        ("0.75", "75/100", Y), ("1.0", "1", Y), ("2.71", "e", N), ("0.1", "10^{-1}", Y), ("0.001", "10^{-3}", Y),
        ("12.5", "25/2", Y), ("3.5", "7/2", Y), ("0.6", "0.66", N), ("4.2", "4,2", N),
    ],
    "fraction": [
        ("\\frac{1}{2}", "0.5", Y), ("\\frac{1}{2}", "1/2", Y), ("\\frac{1}{2}", "\\dfrac{1}{2}", Y),
        ("\\frac{1}{2}", "\\tfrac12", Y), ("\\frac{1}{2}", "2/4", Y), ("\\frac{1}{2}", "\\frac{2}{4}", Y),
        ("\\frac{1}{2}", "\\frac{1}{3}", N), ("\\frac{3}{4}", "0.75", Y), ("\\frac{2}{3}", "0.67", N),
        ("\\frac{2}{3}", "\\frac{4}{6}", Y), ("-\\frac{1}{2}", "\\frac{-1}{2}", Y), ("-\\frac{1}{2}", "\\frac{1}{-2}", Y),
        ("-\\frac{1}{2}", "\\frac{1}{2}", N), ("\\frac{7}{3}", "2\\frac{1}{3}", Y), ("\\frac{5}{2}", "2\\frac12", Y),
        ("\\frac{22}{7}", "\\pi", N), ("\\frac{9}{4}", "2.25", Y), ("\\frac{9}{4}", "\\frac{4}{9}", N),
        ("\\frac{1}{6}", "1/6", Y), ("\\frac{13}{8}", "1.625", Y), ("\\frac{100}{3}", "33.33", N),
        ("\\frac{a}{b}", "a/b", Y), ("\\frac{1}{x+1}", "(x+1)^{-1}", Y), ("\\frac{1}{x}+1", "\\frac{1+x}{x}", Y),
        ("\\frac{x}{2}", "x/3", N), ("\\frac{3}{2}", "1.5", Y), ("\\frac{1}{4}", "25\\%", Y),
    ],
    "root": [
        ("\\sqrt{2}", "\\sqrt2", Y), ("\\sqrt{2}", "2^{1/2}", Y), ("\\sqrt{2}", "\\frac{2}{\\sqrt{2}}", Y),
        ("\\sqrt{2}", "1.414", N), ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", Y), ("2\\sqrt{3}", "\\sqrt{12}", Y),
        ("3\\sqrt{2}", "\\sqrt{18}", Y), ("3\\sqrt{2}", "2\\sqrt{3}", N), ("\\sqrt[3]{8}", "2", Y),
        ("\\sqrt[3]{-8}", "-2", Y), ("\\sqrt{3}/3", "1/\\sqrt{3}", Y), ("\\sqrt{5}", "5^{0.5}", Y),
        ("2+\\sqrt{3}", "\\sqrt{3}+2", Y), ("2+\\sqrt{3}", "2-\\sqrt{3}", N), ("\\frac{1+\\sqrt{5}}{2}", "\\frac{1}{2}+\\frac{\\sqrt{5}}{2}", Y),
        ("\\sqrt{8}", "2\\sqrt{2}", Y), ("\\sqrt{50}", "5\\sqrt2", Y), ("\\sqrt{50}", "5\\sqrt3", N),
        ("4\\sqrt{2}", "\\sqrt{32}", Y), ("\\sqrt[4]{16}", "2", Y), ("\\sqrt{x^2}", "x", Y), ("\\sqrt{2}+\\sqrt{8}", "3\\sqrt{2}", Y),
        ("\\sqrt{6}", "\\sqrt{2}\\sqrt{3}", Y), ("\\sqrt{6}", "\\sqrt{2}+\\sqrt{3}", N),
    ],
    "pi": [
        ("\\pi", "\\pi", Y), ("2\\pi", "2 \\pi", Y), ("2\\pi", "\\pi \\cdot 2", Y), ("2\\pi", "6.28", N),
        ("\\frac{\\pi}{2}", "\\pi/2", Y), ("\\frac{\\pi}{2}", "0.5\\pi", Y), ("\\frac{\\pi}{3}", "\\frac{\\pi}{6}", N),
        ("4\\pi", "4π", Y), ("\\frac{3\\pi}{4}", "\\frac{3}{4}\\pi", Y), ("\\pi r^2", "r^2\\pi", Y), ("\\pi^2", "\\pi\\pi", Y),
        ("\\pi^2", "2\\pi", N), ("100\\pi", "100 pi", Y), ("16\\pi", "16\\pi \\text{ cm}^2", Y), ("\\frac{\\pi}{4}", "45", N),
        ("2\\pi-4", "-4+2\\pi", Y), ("\\pi+1", "\\pi-1", N), ("36\\pi", "36π", Y),
    ],
    "percentage": [
        ("50\\%", "50", Y), ("50\\%", "50%", Y), ("50\\%", "0.5", Y), ("50\\%", "\\frac{1}{2}", Y), ("50\\%", "5", N),
        ("12.5\\%", "12.5", Y), ("12.5\\%", "0.125", Y), ("20\\%", "25\\%", N), ("20", "20\\%", Y),
        ("75", "75 percent", Y), ("33\\%", "34\\%", N), ("100\\%", "1", Y), ("5\\%", "0.05", Y), ("5\\%", "0.5", N),
        ("40\\%", "40.0\\%", Y), ("8\\%", "8 \\%", Y),
    ],
    "units": [
        ("5", "5 cm", Y), ("5", "5\\text{ cm}", Y), ("5", "5\\,\\text{cm}", Y), ("5", "6 cm", N), ("12", "12 \\text{ inches}", Y),
        ("30", "30^\\circ", Y), ("30", "30^{\\circ}", Y), ("30", "30°", Y), ("90", "90 degrees", Y), ("45", "45^\\circ", Y),
        ("45", "50^\\circ", N), ("18", "\\$18", Y), ("18", "$18.00", Y), ("18", "\\$19", N), ("3", "3 \\text{ hours}", Y),
        ("3", "3 hrs", Y), ("60", "60 mph", Y), ("25", "25 \\mathrm{m}^2", Y), ("7", "7 \\text{ apples}", Y), ("7", "8 apples", N),
        ("2.5", "2.5 km", Y), ("1000", "1000 \\text{ meters}", Y), ("15", "15 \\text{dollars}", Y), ("20", "20 units", Y),
    ],
    "thousands": [
        ("1000", "1,000", Y), ("1000", "1{,}000", Y), ("1000", "1\\,000", Y), ("1000000", "1,000,000", Y), ("12345", "12,345", Y),
        ("1234", "1,234", Y), ("1234", "1,243", N), ("10000", "1,000", N), ("2500.5", "2,500.5", Y), ("1000", "1 000", Y),
        ("5000", "\\$5,000", Y), ("123456", "123,456", Y), ("-2000", "-2,000", Y), ("2000", "-2,000", N),
    ],
    "scientific": [
        ("1500", "1.5 \\times 10^{3}", Y), ("1500", "1.5\\cdot10^3", Y), ("1500", "1.5e3", Y), ("1500", "1.5E3", Y),
        ("1500", "15 \\times 10^{2}", Y), ("1500", "1.5 \\times 10^{4}", N), ("0.0003", "3 \\times 10^{-4}", Y),
        ("0.0003", "3e-4", Y), ("0.0003", "3 \\times 10^{-3}", N), ("6.02\\times10^{23}", "6.02e23", Y),
        ("6.02\\times10^{23}", "602\\times10^{21}", Y), ("2^{10}", "1024", Y), ("2^{10}", "1000", N), ("10^{6}", "1000000", Y),
        ("10^6", "1,000,000", Y), ("3\\times 10^8", "300000000", Y), ("1.2\\times10^{-2}", "0.012", Y),
    ],
    "equation": [
        ("3", "x = 3", Y), ("3", "x=3", Y), ("3", "y = 4", N), ("x=3", "3", Y), ("x = 3", "x=3", Y), ("-2", "a = -2", Y),
        ("y = 2x+1", "y = 1 + 2x", Y), ("y=2x+1", "2x+1", Y), ("y = 2x + 1", "y = 2x - 1", N), ("2x+3y=6", "4x+6y=12", Y),
        ("2x+3y=6", "3y = 6 - 2x", Y), ("2x+3y=6", "2x+3y=7", N), ("x^2+y^2=1", "y^2+x^2=1", Y), ("x^2+y^2=4", "x^2+y^2=2", N),
        ("5", "n = 5", Y), ("\\frac{1}{2}", "p = 0.5", Y), ("f(x)=x^2", "x^2", Y), ("10", "k=10", Y), ("10", "k=11", N),
        ("x = 1, y = 2", "(1, 2)", Y), ("y=-x+3", "x+y=3", Y),
    ],
    "interval": [
        ("[1, 2]", "[1,2]", Y), ("[1, 2]", "(1, 2)", N), ("[1, 2)", "[1,2)", Y), ("[1, 2)", "[1,2]", N), ("(0, 1]", "(0,1]", Y),
        ("(-\\infty, 3)", "(-\\infty,3)", Y), ("(-\\infty, 3)", "x < 3", Y), ("(-\\infty, 3]", "x \\le 3", Y),
        ("(-\\infty, 3]", "x < 3", N), ("(3, \\infty)", "x > 3", Y), ("[3, \\infty)", "x \\geq 3", Y), ("[3, \\infty)", "(3,\\infty)", N),
        ("(1, 5)", "1 < x < 5", Y), ("[1, 5]", "1 \\le x \\le 5", Y), ("[1, 5)", "1 \\leq x < 5", Y), ("(1, 5)", "1<x\\le5", N),
        ("(-\\infty, 0) \\cup (0, \\infty)", "(-\\infty,0)\\cup(0,\\infty)", Y), ("(-\\infty, 0) \\cup (0, \\infty)", "(0,\\infty)\\cup(-\\infty,0)", Y),
        ("(-\\infty, 1) \\cup (2, \\infty)", "(-\\infty, 1] \\cup [2, \\infty)", N), ("[\\frac{1}{2}, 3]", "[0.5, 3]", Y),
        ("(-2, 2)", "(-2,2)", Y), ("(-2, 2)", "-2 < x < 2", Y), ("[0, \\pi]", "[0, 3.14]", N), ("(-\\infty, \\infty)", "\\mathbb{R}", Y),
        ("[2, 7]", "[2, 8]", N), ("(1, \\infty)", "x>1", Y),
    ],
    "tuple": [
        ("(1, 2)", "(1,2)", Y), ("(1, 2)", "(2, 1)", N), ("(1, 2)", "( 1 , 2 )", Y), ("(1, -2)", "(1,-2)", Y), ("(1, 2, 3)", "(1,2,3)", Y),
        ("(1, 2, 3)", "(1, 2)", N), ("(\\frac{1}{2}, 3)", "(0.5, 3)", Y), ("(\\sqrt{2}, 1)", "(2^{1/2}, 1)", Y), ("(0, 0)", "(0, 0)", Y),
        ("(3, 4)", "(3,5)", N), ("(2, \\pi)", "(2,\\pi)", Y), ("(-1, 4)", "(-1,4)", Y), ("(a, b)", "(b, a)", N), ("(1, 2)", "[1, 2]", N),
        ("(x, y) = (1, 2)", "(1, 2)", Y), ("(2, 3)", "(x, y) = (2, 3)", Y), ("(1,1,1)", "(1,1,2)", N),
    ],
    "set": [
        ("\\{1, 2\\}", "\\{2, 1\\}", Y), ("\\{1, 2\\}", "1, 2", Y), ("\\{1, 2\\}", "2, 1", Y), ("\\{1, 2\\}", "\\{1, 3\\}", N),
        ("\\{1, 2, 3\\}", "\\{3,2,1\\}", Y), ("\\{1, 2, 3\\}", "\\{1,2\\}", N), ("1, 2", "2,1", Y), ("1, -1", "-1, 1", Y),
        ("1, -1", "1", N), ("\\pm 1", "1, -1", Y), ("2, 3", "3, 2", Y), ("2, 3", "x = 2, x = 3", Y), ("2, 3", "x=2 \\text{ or } x=3", Y),
        ("\\{-1, 1\\}", "\\{1, -1\\}", Y), ("\\{\\frac12, 2\\}", "\\{2, 0.5\\}", Y), ("\\{\\sqrt2, -\\sqrt2\\}", "\\{-\\sqrt{2}, \\sqrt{2}\\}", Y),
        ("\\{0\\}", "0", Y), ("\\{0\\}", "\\{1\\}", N), ("1, 2, 3", "1, 2, 4", N), ("\\emptyset", "\\{\\}", Y), ("3, 5, 7", "7, 5, 3", Y),
        ("-2, 5", "5, -2", Y), ("-2, 5", "2, 5", N),
    ],
    "matrix": [
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", Y),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&3\\\\2&4\\end{pmatrix}", N),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", Y),
        ("\\begin{pmatrix}\\frac12&0\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}0.5&0\\\\0&1\\end{pmatrix}", Y),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", Y),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}", N),
        ("\\begin{pmatrix}2&0\\\\0&2\\end{pmatrix}", "\\begin{pmatrix}2&0&0\\\\0&2&0\\end{pmatrix}", N),
        ("\\begin{pmatrix}\\sqrt{4}&1\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}2&1\\\\0&1\\end{pmatrix}", Y),
        ("\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}", "\\begin{bmatrix}-1&0\\\\0&-1\\end{bmatrix}", Y),
        ("\\begin{pmatrix}1&2\\end{pmatrix}", "\\begin{pmatrix}1&2.5\\end{pmatrix}", N),
        ("\\begin{pmatrix}3\\\\-1\\\\2\\end{pmatrix}", "\\begin{pmatrix}3\\\\-1\\\\2\\end{pmatrix}", Y),
        ("\\begin{pmatrix}x&1\\\\1&x\\end{pmatrix}", "\\begin{pmatrix}x&1\\\\1&x\\end{pmatrix}", Y),
    ],
    "expression": [
        ("2x+1", "1+2x", Y), ("2x+1", "2x-1", N), ("(x+1)^2", "x^2+2x+1", Y), ("(x+1)^2", "x^2+1", N), ("x^2-1", "(x-1)(x+1)", Y),
        ("x^2-1", "(x-1)^2", N), ("\\frac{x^2-1}{x-1}", "x+1", Y), ("2(x+3)", "2x+6", Y), ("2(x+3)", "2x+3", N), ("ab", "b \\cdot a", Y),
        ("a^2b", "ab^2", N), ("3x^2", "3 x^{2}", Y), ("x^3", "x \\cdot x \\cdot x", Y), ("\\sin^2 x + \\cos^2 x", "1", Y),
        ("\\sin(2x)", "2\\sin x\\cos x", Y), ("\\ln(e^2)", "2", Y), ("e^{\\ln 3}", "3", Y), ("\\log(xy)", "\\log x + \\log y", Y),
        ("\\frac{1}{x^2}", "x^{-2}", Y), ("x^{1/2}", "\\sqrt{x}", Y), ("4n+2", "2(2n+1)", Y), ("n(n+1)/2", "\\frac{n^2+n}{2}", Y),
        ("n(n+1)/2", "\\frac{n^2-n}{2}", N), ("2^{n+1}", "2\\cdot 2^n", Y), ("2^{n+1}", "2^n + 1", N), ("|x|", "\\left| x \\right|", Y),
        ("x-y", "y-x", N), ("\\frac{a+b}{2}", "\\frac{a}{2}+\\frac{b}{2}", Y), ("6x^2y", "6yx^2", Y), ("a^2-b^2", "(a-b)(a+b)", Y),
        ("\\frac{\\sqrt{3}}{2}", "\\sin\\frac{\\pi}{3}", Y), ("\\frac{1}{2}", "\\cos\\frac{\\pi}{3}", Y), ("1", "\\tan\\frac{\\pi}{4}", Y),
        ("e^2", "e\\cdot e", Y), ("2i", "\\sqrt{-4}", Y), ("3+4i", "4i+3", Y), ("3+4i", "3-4i", N), ("i^2", "-1", Y),
    ],
    "text": [
        ("Monday", "\\text{Monday}", Y), ("Monday", "monday", Y), ("Monday", "Tuesday", N), ("yes", "Yes", Y), ("yes", "no", N),
        ("A", "(A)", Y), ("A", "B", N), ("\\text{(C)}", "C", Y), ("odd", "\\text{odd}", Y), ("even", "odd", N),
    ],
}


# Issue 11: verdicts a policy could exploit or that cost signal (the issue's examples and more of the same
# classes). Conventions in docs/rewards.md. The verifier was developed against these.
PAIRS_ISSUE_11 = {
    "variables_not_units": [
        ("2\\pi r", "2\\pi rh", N), ("2\\pi rh", "2\\pi r", N), ("2\\pi rh", "2\\pi hr", Y), ("lw", "lwh", N),
        ("lwh", "lw", N), ("lwh", "hwl", Y), ("\\frac{b}{2}", "\\frac{1}{2}bh", N), ("\\frac{1}{2}bh", "\\frac{bh}{2}", Y),
        ("4", "4m", N), ("4m", "4", N), ("3", "3x", N), ("5", "5s", N), ("2", "2h", N), ("\\pi r^2", "\\pi r^2 h", N),
        ("12", "12 \\text{ m}", Y), ("4", "4 \\mathrm{m}", Y), ("20", "20 \\text{ m}^2", Y), ("9", "9 \\text{ cm}^3", Y),
        ("60", "60 \\text{ km}/\\text{h}", Y), ("30", "30 \\text{ m/s}", Y), ("500", "500 \\text{ mL}", Y),
        ("7", "7 \\text{ miles per hour}", Y), ("7", "7 miles per hour", Y), ("7", "8 \\text{ miles per hour}", N),
        ("5", "5 m/s", Y), ("6", "6 \\text{ square feet}", Y), ("15", "15 \\text{ cm}", Y),
    ],
    "lists_not_thousands": [
        ("1100", "1, 100", N), ("1, 100", "1100", N), ("1, 100", "1,100", Y), ("1, 100", "100, 1", Y),
        ("-1125", "-1, 125", N), ("-1, 125", "125, -1", Y), ("1100", "1,100", Y), ("2, 500", "2,500", Y),
        ("2500", "2, 500", N), ("1000000", "1,000,000", Y), ("1000", "1,00,0", N), ("12, 345", "12,345", Y),
        ("(1, 200)", "(1,200)", Y), ("(1, 200)", "(1200)", N), ("3, 4", "3,4", Y),
    ],
    "words": [
        ("\\text{listen}", "\\text{silent}", N), ("no", "on", N), ("\\text{no}", "\\text{on}", N), ("yes", "\\text{Yes}", Y),
        ("\\text{YES}", "yes", Y), ("\\text{Tuesday}", "\\text{tuesday}", Y), ("\\text{east}", "\\text{seat}", N),
        ("\\text{odd}", "\\text{even}", N), ("\\text{No solution}", "no solution", Y), ("\\text{(B)}", "(B)", Y),
        ("\\text{(B)}", "B", Y), ("B", "D", N), ("\\text{Alice}", "\\text{Celia}", N), ("\\text{even}", "Even", Y),
        ("\\text{rat}", "\\text{art}", N), ("\\text{Sunday}", "\\text{Sunday.}", Y), ("\\text{yes}", "1", N),
    ],
    "decimals_vs_exact": [
        ("\\pi", "3.14159265359", N), ("\\pi", "3.14", N), ("\\sqrt{2}", "\\sqrt{2}+10^{-12}", N),
        ("\\sqrt{2}", "1.41421356237", N), ("\\sqrt{2}", "1.4142135623730950488016887242096980785696718753769", N),
        ("e", "2.718281828459045", N), ("\\frac{1}{3}", "0.3333333333", N), ("\\frac{1}{3}", "0.333", N),
        ("\\frac{1}{8}", "0.125", Y), ("\\frac{7}{4}", "1.75", Y), ("2.5", "\\frac{5}{2}", Y), ("0.1", "\\frac{1}{10}", Y),
        ("\\frac{\\pi}{2}", "1.5707963267948966", N), ("\\ln 2", "0.693147", N), ("\\frac{1}{2}", "\\sin\\frac{\\pi}{6}", Y),
        ("\\frac{\\sqrt{3}}{2}", "0.8660254037844386", N), ("2\\sqrt{2}", "2.828", N), ("\\sqrt{2}", "\\sqrt{2}+10^{-60}", N),
        ("1", "0.999999999999", N), ("1", "1.0000", Y), ("3\\pi", "9.42477796", N),
    ],
    "mixed_numbers": [
        ("-\\frac{3}{2}", "-1\\frac{1}{2}", Y), ("-1.5", "-1\\frac12", Y), ("-\\frac{9}{4}", "-2\\frac{1}{4}", Y),
        ("-0.5", "-2\\frac{1}{4}", N), ("-\\frac{1}{2}", "-1\\frac{1}{2}", N), ("\\frac{7}{2}", "3\\frac{1}{2}", Y),
        ("3\\frac{1}{2}", "3.5", Y), ("1\\frac{3}{4}", "\\frac{7}{4}", Y), ("1\\frac{3}{4}", "\\frac{3}{4}", N),
        ("\\frac{3}{2}", "1 \\frac{1}{2}", Y), ("-\\frac{7}{3}", "-2\\tfrac{1}{3}", Y),
    ],
    "membership_and_pairs": [
        ("(-1, 1)", "x \\in (-1, 1)", Y), ("(-1,1)", "x\\in(-1,1)", Y), ("[0, 2]", "x \\in [0, 2)", N),
        ("(4, 3)", "x=4, y=3", Y), ("(4,3)", "x = 4, y = 3", Y), ("(4, 3)", "y = 3, x = 4", Y), ("(4, 3)", "x=3, y=4", N),
        ("(1, 2, 3)", "a=1, b=2, c=3", Y), ("x=4, y=3", "(4, 3)", Y), ("2, 3", "x=2, x=3", Y),
        ("[2, 5)", "x\\in[2,5)", Y), ("(-\\infty, 0)", "x \\in (-\\infty, 0)", Y),
    ],
    "repeating_decimals": [
        ("\\frac{1}{3}", "0.\\overline{3}", Y), ("\\frac{1}{6}", "0.1\\overline{6}", Y), ("\\frac{1}{7}", "0.\\overline{142857}", Y),
        ("\\frac{1}{3}", "0.\\overline{30}", N), ("1", "0.\\overline{9}", Y), ("\\frac{2}{3}", "0.\\overline{6}", Y),
        ("\\frac{2}{3}", "0.\\overline{66}", Y), ("\\frac{4}{11}", "0.\\overline{36}", Y), ("\\frac{4}{11}", "0.\\overline{63}", N),
        ("0.\\overline{3}", "\\frac13", Y),
    ],
    "structures": [
        ("(1, 2)", "(2, 1)", N), ("\\{1, 2\\}", "\\{2, 1\\}", Y), ("[1, 3]", "[1, 3)", N), ("(1, 3]", "(1,3]", Y),
        ("1, 2, 3", "3, 1, 2", Y), ("(1, 2, 3)", "(3, 1, 2)", N), ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1 \\\\ 2\\end{pmatrix}", Y),
        ("\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", "\\begin{pmatrix}0&1\\\\1&0\\end{pmatrix}", N),
        ("(-\\infty, 2) \\cup (3, \\infty)", "(3, \\infty) \\cup (-\\infty, 2)", Y), ("\\{3\\}", "3", Y),
        ("1 \\pm \\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2", Y), ("1 \\pm \\sqrt{2}", "1+\\sqrt2", N), ("(2, 3)", "2, 3", N),
    ],
    "powers_and_bounds": [
        ("2^{100}", "1267650600228229401496703205376", Y), ("10^{100}", "10^{100}", Y), ("10^{100}", "10^{101}", N),
        ("1024", "2^{10}", Y), ("1", "10^{99999999}", N), ("0", "10^{-99999999}", N), ("1", "1e9999999", N),
        ("720", "6!", Y), ("3628800", "10!", Y), ("1", "9^{9^{9^{9}}}", N), ("42", "100000000!", N),
    ],
}


# Written after the verifier was tuned on PAIRS and never used to tune it: an honest estimate of accuracy.
HOLDOUT = [
    ("integer", "144", "12^2", Y), ("integer", "-15", "-(15)", Y), ("integer", "8", "\\sqrt{64}", Y), ("integer", "5", "5.5", N),
    ("decimal", "0.2", "\\frac{1}{5}", Y), ("decimal", "2.75", "11/4", Y), ("decimal", "0.45", "0.54", N),
    ("fraction", "\\frac{5}{8}", "0.625", Y), ("fraction", "\\frac{-3}{4}", "-0.75", Y), ("fraction", "\\frac{3}{5}", "\\frac{5}{3}", N),
    ("root", "\\sqrt{27}", "3\\sqrt{3}", Y), ("root", "\\frac{\\sqrt{6}}{3}", "\\sqrt{\\frac{2}{3}}", Y), ("root", "\\sqrt{10}", "\\sqrt{11}", N),
    ("pi", "\\frac{5\\pi}{6}", "150^\\circ", N), ("pi", "8\\pi", "8 \\pi \\text{ square units}", Y), ("pi", "\\frac{\\pi}{6}", "\\pi/6", Y),
    ("percentage", "25\\%", "\\frac14", Y), ("percentage", "60\\%", "0.6", Y), ("percentage", "15\\%", "0.15\\%", N),
    ("units", "40", "40 \\text{ km/h}", Y), ("units", "12", "12\\text{ students}", Y), ("units", "9", "9 \\text{cm}^2", Y),
    ("thousands", "45000", "45,000", Y), ("thousands", "3500", "3,500 \\text{ dollars}", Y), ("thousands", "4500", "45,00", N),
    ("scientific", "0.00052", "5.2 \\times 10^{-4}", Y), ("scientific", "7\\times10^{5}", "700000", Y), ("scientific", "2e5", "20000", N),
    ("equation", "4", "t = 4", Y), ("equation", "y=3x-2", "3x-y=2", Y), ("equation", "x = -1", "x = 1", N),
    ("interval", "(-1, 4]", "-1 < x \\leq 4", Y), ("interval", "[0, 1]", "[0,1)", N), ("interval", "(2,\\infty)", "x>2", Y),
    ("tuple", "(3, -2)", "(3,-2)", Y), ("tuple", "(1, \\frac{1}{2})", "(1, 0.5)", Y), ("tuple", "(4, 5)", "(5, 4)", N),
    ("set", "\\{2, 4, 6\\}", "6, 4, 2", Y), ("set", "-3, 3", "\\pm 3", Y), ("set", "1, 4", "1, 5", N),
    ("matrix", "\\begin{pmatrix}0&1\\\\1&0\\end{pmatrix}", "\\begin{bmatrix}0 & 1 \\\\ 1 & 0\\end{bmatrix}", Y),
    ("expression", "x^2+5x+6", "(x+2)(x+3)", Y), ("expression", "\\frac{x+1}{2}", "\\frac{x}{2}+\\frac12", Y),
    ("expression", "3(a+b)", "3a+b", N), ("expression", "e^{2x}", "(e^x)^2", Y), ("text", "Tuesday", "\\text{tuesday}", Y),
]


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "answer_pairs.jsonl"), "w") as f:
        for form, pairs in list(PAIRS.items()) + list(PAIRS_ISSUE_11.items()):
            for gold, pred, eq in pairs:
                f.write(json.dumps({"gold": gold, "predicted": pred, "equivalent": eq, "form": form}) + "\n")
        for form, gold, pred, eq in HOLDOUT:
            f.write(json.dumps({"gold": gold, "predicted": pred, "equivalent": eq, "form": form, "holdout": True}) + "\n")
    print(sum(len(p) for p in PAIRS.values()) + sum(len(p) for p in PAIRS_ISSUE_11.values()) + len(HOLDOUT), "pairs", len(HOLDOUT), "of them held out")


if __name__ == "__main__":
    main()
