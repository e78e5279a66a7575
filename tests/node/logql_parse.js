'use strict';
// Grafana's own LogQL grammar (npm @grafana/lezer-logql, what Grafana's query
// editor parses with) over the queries given as a JSON list on stdin. Prints one
// JSON line: for each query, the offsets of the parser's error nodes (empty: it
// parses). Used by tests/test_logql_grammar.py.
const { parser } = require('@grafana/lezer-logql');

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const queries = JSON.parse(input);
  const found = queries.map((query) => {
    const errors = [];
    parser.parse(query).iterate({
      enter: (node) => {
        if (node.type.isError) errors.push(node.from);
      },
    });
    return errors;
  });
  process.stdout.write(`${JSON.stringify(found)}\n`);
});
