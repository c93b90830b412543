/** Plugin output: any JSON is a CNI result whose addresses parse, or a ResultFormatError (property-based). */
import fc from 'fast-check';

import { ResultFormatError, normalizeResult, parseResult } from '../../../lib/cni/result';
import { isCidr } from '../../../lib/validate';

describe('parseResult', () => {
  test('arbitrary JSON and near-results: a result with valid addresses, or ResultFormatError', () => {
    const ip = fc.oneof(
      fc.string(),
      fc.ipV4().map((a) => `${a}/24`),
      fc.ipV6().map((a) => `${a}/64`),
      fc.ipV4(),
    );
    const near = fc.record(
      {
        cniVersion: fc.oneof(fc.constantFrom('0.3.1', '0.4.0', '1.0.0', '9.9.9'), fc.string()),
        interfaces: fc.array(fc.record({ name: fc.oneof(fc.string(), fc.integer()), mac: fc.string(), sandbox: fc.string() }, { requiredKeys: [] })),
        ips: fc.array(
          fc.record(
            { address: ip, gateway: fc.oneof(fc.ipV4(), fc.string()), interface: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.string()) },
            { requiredKeys: [] },
          ),
        ),
        routes: fc.array(
          fc.record(
            {
              dst: fc.oneof(
                fc.string(),
                fc.ipV4().map((a) => `${a}/0`),
              ),
              gw: fc.string(),
            },
            { requiredKeys: [] },
          ),
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), near), (raw) => {
        let r;
        try {
          r = parseResult(raw);
        } catch (e) {
          return e instanceof ResultFormatError;
        }
        const n = normalizeResult(r);
        return (n.ips ?? []).every((x) => isCidr(x.address));
      }),
      { numRuns: 3000 },
    );
  });
});
