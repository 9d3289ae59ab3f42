"""Word pools for realistic content. Every character here is in GBK (the amr and post files are
GBK-encoded); ``tests/unit/test_generate.py`` checks it.

Weighted pools are expanded tuples so that a pick is one index: ``pool[int(random() * len(pool))]``.
"""

from __future__ import annotations


def expand(*pairs: tuple[str, int]) -> tuple:
    out: list = []
    for value, weight in pairs:
        out.extend([value] * weight)
    return tuple(out)


SURNAMES = expand(
    ("陈", 12),
    ("黄", 9),
    ("李", 10),
    ("梁", 6),
    ("林", 6),
    ("张", 8),
    ("罗", 4),
    ("何", 4),
    ("郭", 3),
    ("邓", 3),
    ("王", 8),
    ("刘", 6),
    ("吴", 4),
    ("周", 3),
    ("谢", 3),
    ("冯", 2),
    ("曾", 3),
    ("彭", 2),
    ("麦", 2),
    ("冼", 1),
    ("区", 1),
    ("谭", 2),
    ("关", 2),
    ("叶", 3),
    ("杨", 4),
    ("赵", 2),
    ("徐", 2),
    ("孙", 2),
    ("马", 2),
    ("朱", 2),
    ("胡", 2),
    ("高", 2),
    ("郑", 3),
    ("潘", 2),
    ("钟", 2),
    ("卢", 2),
    ("蔡", 2),
    ("苏", 2),
    ("余", 2),
    ("杜", 1),
    ("程", 1),
    ("魏", 1),
    ("吕", 1),
    ("丁", 1),
    ("沈", 1),
    ("姚", 1),
    ("崔", 1),
    ("江", 2),
    ("邱", 1),
    ("莫", 2),
    ("欧阳", 1),
    ("司徒", 1),
    ("袁", 1),
    ("廖", 2),
    ("方", 1),
    ("温", 1),
    ("伍", 1),
    ("邝", 1),
    ("黎", 2),
    ("龙", 1),
)

GIVEN = tuple(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英霞平刚桂华文辉建国志红玲晓燕俊峰浩宇婷雪琳欣怡嘉颖"
    "晨思佳梓子轩涵然铭睿博凯琪锦荣达海波斌鹏飞坤家宏泽健彬乐诗雅慧淑珍翠凤萍莹丹倩蕾薇婉瑶恩永"
    "康福贵发财德耀炜焕锋鑫森楠柏松桦泳沛润澄颂韵蔚昕曦晴妍媛茵蓉芷若希瑜琦璐"
)

TRADE = tuple(
    "华盛鑫源达兴隆恒信诚和泰丰瑞祥嘉宏伟博创智联新通优品汇佳美悦尚云天星辰蓝海南粤羊城越秀珠江"
    "东方中正永安长远金银宝鼎晟昊骏逸朗锐领航拓启明卓凯旋德润康乐福喜骐麒翔熙誉铭臻锦绣荟萃"
)

INDUSTRIES = (
    "商贸",
    "贸易",
    "电子商务",
    "网络科技",
    "科技",
    "服饰",
    "食品",
    "化妆品",
    "家居用品",
    "母婴用品",
    "电子产品",
    "文化传媒",
    "农产品",
    "茶业",
    "珠宝首饰",
    "五金",
    "箱包",
    "鞋业",
    "日用品",
    "体育用品",
    "宠物用品",
    "酒业",
    "医疗器械",
    "保健食品",
    "数码科技",
    "灯饰",
    "家具",
    "玩具",
    "眼镜",
    "皮具",
    "供应链管理",
    "进出口贸易",
)

COMPANY_SUFFIX = expand(("有限公司", 16), ("有限责任公司", 3), ("股份有限公司", 1))

SHOP_GOODS = (
    "服饰",
    "女装",
    "童装",
    "零食",
    "茶叶",
    "美妆",
    "数码配件",
    "家居",
    "母婴",
    "鞋包",
    "饰品",
    "手机壳",
    "宠物",
    "水果",
    "文具",
    "玩具",
    "日用百货",
    "家纺",
    "腊味",
    "凉茶",
    "陶瓷",
    "花卉",
)

SHOP_SUFFIX = ("小店", "专营店", "优选", "好物", "精品店", "杂货铺", "工作室", "生活馆", "严选")

PERSONAL_SUFFIX = ("商行", "经营部", "店", "贸易商行", "网店")

# 所属区划 code -> (district name, key abbreviation), feeds.DISTRICTS and RETIRED_DISTRICTS.
DISTRICT_NAMES = {
    "440103": ("荔湾", "荔"),
    "440104": ("越秀", "越"),
    "440105": ("海珠", "海"),
    "440106": ("天河", "天"),
    "440111": ("白云", "白"),
    "440112": ("黄埔", "埔"),
    "440113": ("番禺", "番"),
    "440114": ("花都", "花"),
    "440115": ("南沙", "南"),
    "440117": ("从化", "从"),
    "440118": ("增城", "增"),
    "440102": ("东山", "东"),
    "440107": ("芳村", "芳"),
    "440116": ("萝岗", "萝"),
}

# Birthplace codes of orphans' ID numbers: outside Guangzhou, so never an ID of the registry.
OTHER_AREAS = (
    "440303",
    "440304",
    "440604",
    "441302",
    "445102",
    "440883",
    "360102",
    "430104",
    "450103",
    "350203",
    "420106",
    "510107",
    "441881",
    "440703",
)

# Platform -> (weight, shop URL pattern with {n}).
PLATFORMS = {
    "淘宝": (24, "https://shop{n}.taobao.com"),
    "天猫": (10, "https://store{n}.tmall.com"),
    "京东": (12, "https://mall.jd.com/index-{n}.html"),
    "拼多多": (14, "https://mobile.yangkeduo.com/mall_page.html?mall_id={n}"),
    "抖音": (14, "https://haohuo.jinritemai.com/views/shop/index?id={n}"),
    "快手": (6, "https://app.kwaixiaodian.com/page/kwaishop-shop?id={n}"),
    "唯品会": (3, "https://list.vip.com/shop-{n}.html"),
    "美团": (5, "https://www.meituan.com/shop/{n}/"),
    "小红书": (5, "https://www.xiaohongshu.com/shop/{n}"),
    "微信小店": (7, "https://shop.weixin.qq.com/s/{n}"),
}
PLATFORM_POOL = expand(*((p, w) for p, (w, _u) in PLATFORMS.items()))

PRODUCT_CATEGORIES = (
    "服装",
    "鞋类",
    "儿童玩具",
    "儿童用品",
    "化妆品",
    "预包装食品",
    "小家电",
    "电线电缆",
    "手机充电器",
    "文具",
    "箱包",
    "家具",
    "灯具",
    "纺织品",
    "电动自行车头盔",
    "眼镜",
    "保健食品",
)

COMPLAINT_CATEGORIES = (
    "商品质量",
    "虚假宣传",
    "售后服务",
    "价格欺诈",
    "物流配送",
    "退换货纠纷",
    "个人信息泄露",
    "预付卡消费",
    "网络直播带货",
    "七日无理由退货",
)

LICENCE_NAMES = expand(
    ("食品经营许可证", 10),
    ("药品网络销售备案凭证", 2),
    ("第二类医疗器械经营备案凭证", 3),
    ("医疗器械网络销售备案凭证", 2),
    ("出版物经营许可证", 2),
    ("网络文化经营许可证", 2),
    ("增值电信业务经营许可证", 2),
    ("酒类商品零售许可证", 2),
    ("食品生产许可证", 1),
    ("化妆品生产许可证", 1),
    ("营业性演出许可证", 1),
)

ABNORMAL_REASONS = (
    "未按照规定的期限公示年度报告",
    "通过登记的住所或者经营场所无法联系",
    "未在市场监督管理部门责令的期限内公示有关企业信息",
    "公示企业信息隐瞒真实情况、弄虚作假",
)
SERIOUS_REASONS = (
    "被列入经营异常名录届满3年仍未履行相关义务",
    "因刷单炒信受到较重行政处罚",
    "因销售侵权假冒商品受到较重行政处罚",
    "因虚假宣传受到较重行政处罚",
    "提交虚假材料取得变更登记，被撤销登记",
)
LIST_BASIS = (
    "依据《市场监督管理严重违法失信名单管理办法》第二条",
    "依据《企业经营异常名录管理暂行办法》第四条",
)

NDRC_PUNISH_BASIS = (
    "《关于对失信被执行人实施联合惩戒的合作备忘录》",
    "《关于对电子商务及分享经济领域炒信行为相关失信主体实施联合惩戒的行动计划》",
    "《关于对严重质量违法失信行为当事人实施联合惩戒的合作备忘录》",
)
NDRC_REWARD_BASIS = (
    "《关于对海关高级认证企业实施联合激励的合作备忘录》",
    "《关于对纳税信用A级纳税人实施联合激励的合作备忘录》",
    "广州市诚信经营示范企业（年度）",
)

INSPECTOR_UNITS_CITY = "广州市市场监督管理局"

# Weighted enum picks (values are feeds.py's own lists).
VIOLATION_W = expand(
    ("侵权假冒", 14),
    ("虚假宣传", 22),
    ("刷单炒信", 10),
    ("恶意评价", 5),
    ("产品质量", 20),
    ("无照经营", 9),
    ("其他", 20),
)
PENALTY_CAT_W = expand(
    ("警告", 20),
    ("通报批评", 5),
    ("罚款", 48),
    ("没收违法所得", 12),
    ("暂扣许可证件", 3),
    ("吊销许可证件", 3),
    ("责令停产停业", 5),
    ("限制从业", 4),
)
CAC_W = expand(("违规收集个人信息", 40), ("违规使用个人信息", 30), ("个人信息泄露", 15), ("未落实等级保护", 15))
PSB_W = expand(("网络诈骗", 25), ("网络传销", 8), ("侵犯公民个人信息", 20), ("刷单炒信", 25), ("销售假冒商品", 22))
BREACH_W = expand(("服务违约", 50), ("预付卡违约", 25), ("虚假宣传", 25))
FIN_W = expand(("非法集资", 10), ("贷款逾期", 50), ("融资违约", 25), ("非法放贷", 15))
POST_W = expand(("虚假发货", 35), ("延误投递", 35), ("违规收寄", 20), ("泄露用户信息", 10))
CUSTOMS_LEVEL_W = expand(("高级认证企业", 6), ("认证企业", 12), ("常规企业", 66), ("失信企业", 11), ("严重失信企业", 5))
CUSTOMS_TYPE_W = expand(("走私", 15), ("违规", 55), ("跨境电商申报不实", 30))
REG_STATUS_W = expand(("存续", 62), ("在业", 30), ("吊销", 3), ("注销", 3), ("迁出", 2))

ALL_TEXT = (
    SURNAMES,
    GIVEN,
    TRADE,
    INDUSTRIES,
    COMPANY_SUFFIX,
    SHOP_GOODS,
    SHOP_SUFFIX,
    PERSONAL_SUFFIX,
    tuple(n for pair in DISTRICT_NAMES.values() for n in pair),
    tuple(PLATFORMS),
    PRODUCT_CATEGORIES,
    COMPLAINT_CATEGORIES,
    LICENCE_NAMES,
    ABNORMAL_REASONS,
    SERIOUS_REASONS,
    LIST_BASIS,
    NDRC_PUNISH_BASIS,
    NDRC_REWARD_BASIS,
    (INSPECTOR_UNITS_CITY,),
)
