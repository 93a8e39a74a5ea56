// A Contact's loyalty fields and its journal as the wire adapters hand them over (UI API shapes).
export function contact(fields) {
    const values = {
        Loyalty_Member_Id__c: 'mem-00042',
        Loyalty_Tier__c: 'Silver',
        Loyalty_Next_Tier__c: 'Gold',
        Loyalty_Points_To_Next_Tier__c: 1500,
        Loyalty_Qualifying_Points__c: 4500,
        Loyalty_Points__c: 1234,
        Loyalty_Pending_Points__c: 250,
        Loyalty_Expiring_Points__c: 300,
        Loyalty_Points_Expire_On__c: '2027-01-31',
        ...fields
    };
    return {
        apiName: 'Contact',
        id: '0035g00000AbcDeAAJ',
        fields: Object.fromEntries(Object.entries(values).map(([name, value]) => [name, { value }]))
    };
}

export function journal(entries) {
    return {
        count: entries.length,
        records: entries.map((entry, index) => ({
            apiName: 'Loyalty_Transaction__c',
            id: `a015g00000Tx${String(index).padStart(4, '0')}AAA`,
            fields: Object.fromEntries(
                Object.entries(entry).map(([name, value]) => [name, { value, displayValue: null }])
            )
        }))
    };
}

export const ENTRIES = [
    { Kind__c: 'bonus', Points__c: 100, Pending_Points__c: 0, Reason__c: 'Signup bonus', Entry_Date__c: '2026-01-05T09:00:00.000Z' },
    { Kind__c: 'accrual', Points__c: 0, Pending_Points__c: 250, Reason__c: 'Order 1001 (shopify:demo)', Entry_Date__c: '2026-11-20T10:00:00.000Z' },
    { Kind__c: 'redemption', Points__c: -500, Pending_Points__c: 0, Reason__c: 'Reward 50-off', Entry_Date__c: '2026-11-25T12:00:00.000Z' },
    { Kind__c: 'expiry', Points__c: -40, Pending_Points__c: 0, Reason__c: 'Points earned 2025-10 expired', Entry_Date__c: '2026-11-01T00:05:00.000Z' },
    { Kind__c: 'release', Points__c: 600, Pending_Points__c: -600, Reason__c: 'Order 990 released', Entry_Date__c: '2026-10-15T02:00:00.000Z' },
    { Kind__c: 'adjustment', Points__c: 20, Pending_Points__c: 0, Reason__c: 'Goodwill by Anna', Entry_Date__c: '2026-09-02T08:00:00.000Z' }
];

export async function settled() {
    // the wires' data renders on the next microtasks
    await Promise.resolve();
    await Promise.resolve();
}
