/* Level counts for a block of log lines at C speed.
 *
 * This is core.levels.detect_level, ported rule for rule, for the lines it can decide
 * exactly: plain ASCII without escape sequences (almost every line of a real log). Any
 * other line (UTF-8 beyond ASCII, colours) is handed back by its offset, and Python
 * runs detect_level on it. detect_level stays the definition; tests/unit/test_log_tally.py
 * holds the two to the same answer on every line.
 *
 * Why C: the logs goal is "within 10x of grep", and Python's `re` costs a tenth of a
 * microsecond per match before it does anything; one pass here costs about as much as
 * a memchr over the block.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { NONE = 0, ERROR, WARNING, INFO, DEBUG, UNDECIDED, KINDS };

#define SCAN_CHARS 256 /* core.levels.SCAN_CHARS: only a line's head holds level words */
#define NOTE_PREFIX "[fleetdeck] "

/* a literal and its length */
typedef struct { const char *s; Py_ssize_t n; } lit;
#define LIT(text) {text, sizeof(text) - 1}

/* core.levels._WORDS */
static const struct { lit word; int level; } WORDS[] = {
    {LIT("error"), ERROR}, {LIT("err"), ERROR}, {LIT("fatal"), ERROR},
    {LIT("critical"), ERROR}, {LIT("crit"), ERROR}, {LIT("panic"), ERROR},
    {LIT("emerg"), ERROR}, {LIT("emergency"), ERROR}, {LIT("alert"), ERROR},
    {LIT("severe"), ERROR}, {LIT("failure"), ERROR},
    {LIT("warning"), WARNING}, {LIT("warn"), WARNING},
    {LIT("info"), INFO}, {LIT("information"), INFO}, {LIT("informational"), INFO},
    {LIT("notice"), INFO},
    {LIT("debug"), DEBUG}, {LIT("trace"), DEBUG}, {LIT("verbose"), DEBUG},
    {LIT("fine"), DEBUG}, {LIT("finer"), DEBUG}, {LIT("finest"), DEBUG},
    {{NULL, 0}, NONE},
};
/* core.levels._CANDIDATE: the starts of a level word, by their first letter */
static const lit CANDIDATES_A[] = {LIT("alert"), {NULL, 0}};
static const lit CANDIDATES_C[] = {LIT("crit"), {NULL, 0}};
static const lit CANDIDATES_D[] = {LIT("debug"), {NULL, 0}};
static const lit CANDIDATES_E[] = {LIT("err"), LIT("emerg"), LIT("exception"), {NULL, 0}};
static const lit CANDIDATES_F[] = {LIT("fatal"), {NULL, 0}};
static const lit CANDIDATES_I[] = {LIT("info"), {NULL, 0}};
static const lit CANDIDATES_N[] = {LIT("notice"), {NULL, 0}};
static const lit CANDIDATES_P[] = {LIT("panic"), {NULL, 0}};
static const lit CANDIDATES_S[] = {LIT("severe"), {NULL, 0}};
static const lit CANDIDATES_T[] = {LIT("trace"), {NULL, 0}};
static const lit CANDIDATES_V[] = {LIT("verbose"), {NULL, 0}};
static const lit CANDIDATES_W[] = {LIT("warn"), {NULL, 0}};

static inline const lit *candidates_from(unsigned char c) {
    switch (c | 0x20) {
    case 'a': return CANDIDATES_A;
    case 'c': return CANDIDATES_C;
    case 'd': return CANDIDATES_D;
    case 'e': return CANDIDATES_E;
    case 'f': return CANDIDATES_F;
    case 'i': return CANDIDATES_I;
    case 'n': return CANDIDATES_N;
    case 'p': return CANDIDATES_P;
    case 's': return CANDIDATES_S;
    case 't': return CANDIDATES_T;
    case 'v': return CANDIDATES_V;
    case 'w': return CANDIDATES_W;
    default: return NULL;
    }
}
/* core.levels._JSON_FIELD's keys, and _LOGFMT's */
static const lit JSON_KEYS[] = {LIT("level"), LIT("severity"), LIT("lvl"), LIT("levelname"),
                                LIT("loglevel"), LIT("log.level"), {NULL, 0}};
static const lit LOGFMT_KEYS[] = {LIT("level"), LIT("lvl"), LIT("severity"), LIT("loglevel"),
                                  {NULL, 0}};
/* core.levels._COLON_WORDS */
static const lit COLON_WORDS[] = {LIT("error"), LIT("fatal"), LIT("panic"), LIT("critical"),
                                  LIT("warning"), LIT("warn"), {NULL, 0}};

/* Python's str.isspace and re's \s, for ASCII */
static inline int is_space(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}
static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static inline int is_alpha(unsigned char c) { return (unsigned char)((c | 0x20) - 'a') < 26; }
static inline int is_upper(unsigned char c) { return (unsigned char)(c - 'A') < 26; }
static inline int is_alnum(unsigned char c) { return is_alpha(c) || is_digit(c); }
static inline int is_word(unsigned char c) { return is_alnum(c) || c == '_'; }
static inline unsigned char to_lower(unsigned char c) { return is_upper(c) ? c | 0x20 : c; }

/* s[0:avail] starts with the lower case literal, ignoring case */
static inline int starts_with_i(const unsigned char *s, Py_ssize_t avail, lit l) {
    if (avail < l.n) return 0;
    for (Py_ssize_t i = 0; i < l.n; i++) {
        if (to_lower(s[i]) != (unsigned char)l.s[i]) return 0;
    }
    return 1;
}

/* the word, ignoring case, is one of the list's */
static int in_list(const unsigned char *w, Py_ssize_t n, const lit *list) {
    for (int k = 0; list[k].s; k++) {
        if (list[k].n == n && starts_with_i(w, n, list[k])) return 1;
    }
    return 0;
}

/* _WORDS.get(word.lower()) */
static int word_to_level(const unsigned char *w, Py_ssize_t n) {
    for (int k = 0; WORDS[k].word.s; k++) {
        if (WORDS[k].word.n == n && starts_with_i(w, n, WORDS[k].word)) return WORDS[k].level;
    }
    return NONE;
}

/* core.levels._number_level; NONE for None */
static int number_level(long long n) {
    if (n >= 10) return n >= 50 ? ERROR : n >= 40 ? WARNING : n >= 30 ? INFO : DEBUG;
    if (n <= 7) return n <= 3 ? ERROR : n == 4 ? WARNING : n <= 6 ? INFO : DEBUG;
    return NONE;
}

/* digits from s[*j], as int() reads them (kept small: only "at least 50" matters) */
static long long read_number(const unsigned char *s, Py_ssize_t n, Py_ssize_t *j) {
    long long v = 0;
    while (*j < n && is_digit(s[*j])) {
        if (v < 1000000000LL) v = v * 10 + (s[*j] - '0');
        (*j)++;
    }
    return v;
}

/* _JSON_FIELD.search(line): -1 when nothing matches, else the level (NONE: no level) */
static int json_level(const unsigned char *s, Py_ssize_t n) {
    const unsigned char *q = memchr(s, '"', (size_t)n);
    while (q != NULL) {
        Py_ssize_t i = q - s, j = -1;
        for (int k = 0; JSON_KEYS[k].s && j < 0; k++) {
            Py_ssize_t m = JSON_KEYS[k].n;
            if (starts_with_i(s + i + 1, n - i - 1, JSON_KEYS[k]) && i + 1 + m < n
                && s[i + 1 + m] == '"')
                j = i + 2 + m;
        }
        if (j >= 0) {
            while (j < n && is_space(s[j])) j++;
            if (j < n && s[j] == ':') {
                j++;
                while (j < n && is_space(s[j])) j++;
                if (j < n && s[j] == '"') {
                    j++;
                    while (j < n && is_space(s[j])) j++;
                    Py_ssize_t start = j;
                    while (j < n && is_alpha(s[j])) j++;
                    if (j > start) return word_to_level(s + start, j - start);
                } else if (j < n && is_digit(s[j])) {
                    return number_level(read_number(s, n, &j));
                }
            }
        }
        q = i + 1 < n ? memchr(s + i + 1, '"', (size_t)(n - i - 1)) : NULL;
    }
    return -1;
}

/* _LOGFMT.search(head): -1 when nothing matches, else the level (NONE: no level). A
 * match is a key right before an '=', at the start or after white space; the first '='
 * with one is the leftmost match. */
static int logfmt_level(const unsigned char *h, Py_ssize_t hn) {
    const unsigned char *eq = memchr(h, '=', (size_t)hn);
    while (eq != NULL) {
        Py_ssize_t e = eq - h;
        for (int key = 0; LOGFMT_KEYS[key].s; key++) {
            Py_ssize_t k = e - LOGFMT_KEYS[key].n;
            if (k < 0 || (k > 0 && !is_space(h[k - 1]))
                || !starts_with_i(h + k, e - k, LOGFMT_KEYS[key]))
                continue;
            Py_ssize_t j = e + 1;
            if (j < hn && h[j] == '"') j++;
            Py_ssize_t start = j;
            while (j < hn && is_alpha(h[j])) j++;
            if (j > start) return word_to_level(h + start, j - start);
            break; /* one key at most ends here */
        }
        eq = e + 1 < hn ? memchr(eq + 1, '=', (size_t)(hn - e - 1)) : NULL;
    }
    return -1;
}

/* _EXCEPTION_HEAD.match(head, 0, s): `\s*(?:[A-Za-z_]\w*\.)*\w*$` */
static int exception_head(const unsigned char *h, Py_ssize_t s) {
    Py_ssize_t i = 0, seg;
    while (i < s && is_space(h[i])) i++;
    for (seg = i; i < s; i++) {
        if (h[i] == '.') {
            if (i == seg || !(is_alpha(h[seg]) || h[seg] == '_')) return 0;
            seg = i + 1;
        } else if (!is_word(h[i])) {
            return 0;
        }
    }
    return 1;
}

/* the word ends with the lower case literal, ignoring case */
static int ends_with_i(const unsigned char *w, Py_ssize_t n, lit l) {
    return n >= l.n && starts_with_i(w + n - l.n, l.n, l);
}

/* core.levels._word_level; the regexes there run on the lower-cased head, so every
 * comparison here ignores case */
static int word_level(const unsigned char *h, Py_ssize_t hn) {
    static const lit ERROR_END = LIT("error"), EXCEPTION_END = LIT("exception");
    Py_ssize_t p = 0;
    while (p < hn) {
        Py_ssize_t s = p, e;
        int found = 0;
        for (; s < hn && !found; s++) {
            const lit *list = candidates_from(h[s]);
            for (int k = 0; list && list[k].s && !found; k++)
                found = starts_with_i(h + s, hn - s, list[k]);
        }
        if (!found) return NONE;
        s--;
        for (e = s; e < hn && is_alpha(h[e]); e++) {} /* [a-z]* on the lower-cased head */
        const unsigned char *word = h + s;
        Py_ssize_t wn = e - s;
        int before = s ? h[s - 1] : -1, after = e < hn ? h[e] : -1;
        int colon_after = after == -1 || after == ':'; /* Python: after in ":" */
        int exception = colon_after && (ends_with_i(word, wn, ERROR_END)
                                        || ends_with_i(word, wn, EXCEPTION_END));
        p = e;
        if (before >= 0 && (is_alnum(before) || before == '_')) {
            if (exception && exception_head(h, s)) return ERROR; /* ValueError: ... */
            continue;
        }
        if (after >= 0 && (is_alnum(after) || after == '_')) continue;
        if (wn == 9 && memcmp(word, "Traceback", 9) == 0) return ERROR;
        int level = word_to_level(word, wn);
        if (level == NONE) {
            if (exception && exception_head(h, s)) return ERROR; /* TypeError: ... */
            continue;
        }
        int upper = 1;
        for (Py_ssize_t i = s; i < e; i++) upper &= is_upper(h[i]);
        if (upper) return level;
        if (before > 0 && memchr("[(<", before, 3) && after > 0 && memchr("])>:|", after, 5))
            return level;
        if (after == ':' && in_list(word, wn, COLON_WORDS)
            && (before < 0 || before == ' ' || before == '\t' || before == ':'))
            return level;
    }
    return NONE;
}

/* core.levels.detect_level for one line without its newline; UNDECIDED unless plain
 * ASCII without escape sequences */
static int line_level(const unsigned char *s, Py_ssize_t n, int plain) {
    for (Py_ssize_t i = 0; !plain && i < n; i++) {
        if (s[i] >= 0x80 || s[i] == 0x1b) return UNDECIDED;
    }
    if (n <= 0) return NONE;
    if (s[0] == '[' && n >= 12 && memcmp(s, NOTE_PREFIX, 12) == 0) return NONE;
    Py_ssize_t hn = n < SCAN_CHARS ? n : SCAN_CHARS;
    unsigned char first = s[0];
    if (first == '<') { /* <3>: a syslog priority */
        Py_ssize_t r = 0;
        while (r < 4 && 1 + r < hn && is_digit(s[1 + r])) r++;
        if (r >= 1 && r <= 3 && 1 + r < hn && s[1 + r] == '>') {
            Py_ssize_t j = 1;
            return number_level(read_number(s, 1 + r, &j) % 8);
        }
    } else if (first == 'I' || first == 'W' || first == 'E' || first == 'F') { /* klog */
        if (hn >= 11 && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) && is_digit(s[4])
            && s[5] == ' ' && is_digit(s[6]) && is_digit(s[7]) && s[8] == ':'
            && is_digit(s[9]) && is_digit(s[10]))
            return first == 'I' ? INFO : first == 'W' ? WARNING : ERROR;
    }
    Py_ssize_t k = 0;
    while (k < hn && is_space(s[k])) k++;
    if (k < hn && s[k] == '{' && memchr(s, '"', (size_t)hn)) {
        int level = json_level(s, n);
        if (level > 0) return level;
    }
    if (memchr(s, '=', (size_t)hn)) {
        int level = logfmt_level(s, hn);
        if (level > 0) return level;
    }
    return word_level(s, hn);
}

PyDoc_STRVAR(count_doc,
"count(data) -> (lines, error, warning, info, debug, others)\n\n"
"The number of lines of ``data`` (bytes, each line ending in a newline) and their\n"
"levels, as detect_level gives them; ``others``: where the lines start that are not\n"
"plain ASCII, for detect_level itself.");

static PyObject *count(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *d = view.buf;
    Py_ssize_t size = view.len, p = 0, counts[KINDS] = {0};
    Py_ssize_t *others = NULL, n_others = 0, cap = 0;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    /* a block of plain ASCII (the usual case): no line needs looking at for it */
    uint64_t high = 0, word;
    Py_ssize_t i = 0;
    for (; i + 8 <= size; i += 8) {
        memcpy(&word, d + i, 8);
        high |= word;
    }
    for (; i < size; i++) high |= d[i];
    int plain = !(high & 0x8080808080808080ULL) && memchr(d, 0x1b, (size_t)size) == NULL;
    while (p < size) {
        const unsigned char *nl = memchr(d + p, '\n', size - p);
        Py_ssize_t q = nl ? nl - d : size;
        int level = line_level(d + p, q - p, plain);
        counts[level]++;
        if (level == UNDECIDED) {
            if (n_others == cap) {
                cap = cap ? cap * 2 : 64;
                Py_ssize_t *grown = realloc(others, cap * sizeof(Py_ssize_t));
                if (grown == NULL) { failed = 1; break; }
                others = grown;
            }
            others[n_others++] = p;
        }
        p = q + 1;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *list = failed ? NULL : PyList_New(n_others);
    for (Py_ssize_t i = 0; list != NULL && i < n_others; i++) {
        PyObject *start = PyLong_FromSsize_t(others[i]);
        if (start == NULL) { Py_CLEAR(list); break; }
        PyList_SET_ITEM(list, i, start);
    }
    free(others);
    if (list == NULL) return failed ? PyErr_NoMemory() : NULL;
    Py_ssize_t lines = 0;
    for (int k = 0; k < KINDS; k++) lines += counts[k];
    return Py_BuildValue("nnnnnN", lines, counts[ERROR], counts[WARNING], counts[INFO],
                         counts[DEBUG], list);
}

PyDoc_STRVAR(words_doc, "words() -> the level words this module knows, as core.levels._WORDS");

static PyObject *words(PyObject *self, PyObject *unused) {
    static const char *names[] = {NULL, "error", "warning", "info", "debug"};
    PyObject *out = PyDict_New();
    for (int k = 0; out != NULL && WORDS[k].word.s; k++) {
        PyObject *name = PyUnicode_FromString(names[WORDS[k].level]);
        if (name == NULL || PyDict_SetItemString(out, WORDS[k].word.s, name) < 0) Py_CLEAR(out);
        Py_XDECREF(name);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"count", count, METH_O, count_doc},
    {"words", words, METH_NOARGS, words_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "core.logs._tally",
    "Level counts for blocks of log lines, as core.levels.detect_level gives them.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__tally(void) { return PyModule_Create(&module); }
