import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isBookkeepingKey, normalizeStateDictKeys } from '../../../src/models/import/pytorch/index.js';

const keysOf = (names: string[]) => new Map(names.map((name, i) => [name, i]));

describe('normalizeStateDictKeys', () => {
  it('strips DataParallel and torch.compile prefixes from every key that has them', () => {
    const { stateDict, renamed } = normalizeStateDictKeys(
      keysOf(['module.features.conv0.weight', 'module._orig_mod.classifier.weight', 'classifier.bias']),
    );
    assert.deepEqual([...stateDict], [['features.conv0.weight', 0], ['classifier.weight', 1], ['classifier.bias', 2]]);
    assert.deepEqual(renamed, [
      { from: 'module.features.conv0.weight', to: 'features.conv0.weight' },
      { from: 'module._orig_mod.classifier.weight', to: 'classifier.weight' },
    ]);
  });

  it("renames pre-0.3 DenseNet keys exactly as torchvision's loader pattern does", () => {
    const cases: [string, string][] = [
      ['features.denseblock1.denselayer1.norm.1.weight', 'features.denseblock1.denselayer1.norm1.weight'],
      ['features.denseblock4.denselayer16.norm.2.running_var', 'features.denseblock4.denselayer16.norm2.running_var'],
      ['features.denseblock2.denselayer12.conv.2.weight', 'features.denseblock2.denselayer12.conv2.weight'],
      ['module.densenet121.features.denseblock3.denselayer7.conv.1.weight', 'densenet121.features.denseblock3.denselayer7.conv1.weight'],
      ['features.denseblock1.denselayer1.relu.1.bias', 'features.denseblock1.denselayer1.relu1.bias'],
      // Outside the pattern, left alone: torchvision does not touch these either.
      ['features.denseblock1.denselayer1.norm.3.weight', 'features.denseblock1.denselayer1.norm.3.weight'],
      ['features.denseblock1.denselayer1.norm.1.num_batches_tracked', 'features.denseblock1.denselayer1.norm.1.num_batches_tracked'],
      ['features.transition1.norm.1.weight', 'features.transition1.norm.1.weight'],
      ['features.denseblock1.denselayer2.norm1.weight', 'features.denseblock1.denselayer2.norm1.weight'],
    ];
    const { stateDict } = normalizeStateDictKeys(keysOf(cases.map(([from]) => from)));
    assert.deepEqual([...stateDict.keys()], cases.map(([, to]) => to));
  });

  it('refuses two keys that become the same name', () => {
    assert.throws(
      () => normalizeStateDictKeys(keysOf(['module.fc.weight', 'fc.weight'])),
      /keys 'module\.fc\.weight' and 'fc\.weight' both become 'fc\.weight'/,
    );
  });
});

describe('isBookkeepingKey', () => {
  it('marks num_batches_tracked only', () => {
    assert.ok(isBookkeepingKey('features.norm5.num_batches_tracked'));
    assert.ok(!isBookkeepingKey('features.norm5.running_mean'));
    assert.ok(!isBookkeepingKey('features.norm5.my_num_batches_tracked'));
  });
});
