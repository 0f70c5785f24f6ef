"""First names and surnames (EN and RU) for the synthetic slips and forms.

The lists below were written for this project from common knowledge of frequent names (English,
Irish/Scottish, French-Canadian and Russian); a list of common names is a fact, not a creative
work, and these lists are released with the project under its licence (public domain in effect,
CC0 where that is needed). Russian surnames get their female form (-ов/-ова, -ин/-ина,
-ский/-ская) and patronymics are derived from the male first names.
"""

from __future__ import annotations

import functools

import numpy as np

EN_FIRST = """
James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew
Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward
Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin
Samuel Gregory Alexander Frank Patrick Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan
Henry Douglas Zachary Peter Kyle Walter Ethan Jeremy Harold Keith Christian Roger Noah Gerald
Carl Terry Sean Austin Arthur Lawrence Jesse Dylan Bryan Joe Jordan Billy Bruce Albert Willie
Gabriel Logan Alan Juan Wayne Roy Ralph Randy Eugene Vincent Russell Elijah Louis Bobby Philip
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Margaret
Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah Stephanie Rebecca
Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma Nicole Helen Samantha
Katherine Christine Debra Rachel Carolyn Janet Catherine Maria Heather Diane Ruth Julie Olivia
Joyce Virginia Victoria Kelly Lauren Christina Joan Evelyn Judith Megan Andrea Cheryl Hannah
Jacqueline Martha Gloria Teresa Ann Sara Madison Frances Kathryn Janice Jean Abigail Alice Judy
Sophia Grace Denise Amber Doris Marilyn Danielle Beverly Isabella Theresa Diana Natalie Brittany
Charlotte Marie Kayla Alexis Lori Jean-Roch Jean-Marc Jean-Luc Marie-Claude Marie-Eve Pierre
Andre Luc Yves Rene Denis Sylvie Chantal Nathalie Isabelle Genevieve Francois Mathieu Guillaume
Olivier Sebastien Simon Etienne Julien Camille Chloe Lea Manon Gabrielle Sean Liam Declan Niamh
Siobhan Aoife Ciaran Eoin Fiona Moira Angus Hamish Callum Ewan Isla Morag
"""

EN_SURNAME = """
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark
Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams
Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker
Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper
Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James
Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster
Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Fisher
Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace West
Cole Hayes Bryant Gibson Ellis Stevens Murray Ford Marshall Owens McDonald Harrison Ruiz Kennedy
Wells Alvarez Woods Mendoza Castillo Olson Webb Washington Tucker Freeman Burns Henry Vasquez
O'Brien O'Connor O'Neill O'Sullivan McCarthy McLaughlin MacLeod MacKenzie Fitzgerald Doyle Walsh
Byrne Ryan Gallagher Tremblay Gagnon Roy Cote Bouchard Gauthier Morin Lavoie Fortin Gagne Ouellet
Pelletier Belanger Levesque Bergeron Leblanc Paquette Girard Simard Boucher Caron Beaulieu
Cloutier Dube Poirier Fournier Lapointe Leclerc Lefebvre Poulin Thibault St-Pierre Nadeau
Martel Gilbert Hebert Desjardins Charbonneau Lachance Vaillancourt Dufresne Boisvert
"""

RU_FIRST_M = """
Александр Алексей Анатолий Андрей Антон Аркадий Арсений Артём Богдан Борис Вадим Валентин
Валерий Василий Виктор Виталий Владимир Владислав Всеволод Вячеслав Геннадий Георгий Герман
Глеб Григорий Давид Даниил Денис Дмитрий Евгений Егор Захар Иван Игорь Илья Кирилл Константин
Лев Леонид Максим Марк Матвей Михаил Никита Николай Олег Павел Пётр Роман Руслан Семён Сергей
Станислав Степан Тимофей Тимур Фёдор Филипп Эдуард Юрий Ярослав Макар Савелий Ефим Прохор
"""

RU_FIRST_F = """
Александра Алина Алиса Алла Анастасия Анна Антонина Валентина Валерия Варвара Вера Вероника
Виктория Галина Дарья Диана Евгения Екатерина Елена Елизавета Жанна Зинаида Зоя Инна Ирина Карина
Кира Клавдия Ксения Лариса Лидия Любовь Людмила Маргарита Марина Мария Надежда Наталья Нина
Оксана Олеся Ольга Полина Раиса Светлана Софья Тамара Татьяна Ульяна Юлия Яна Арина Василиса
Ева Злата Майя Милана Таисия Эльвира Ядвига Фаина Серафима
"""

RU_SURNAME = """
Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Фёдоров Морозов Волков
Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин
Захаров Зайцев Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Кузьмин Фролов
Александров Дмитриев Королёв Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв
Белов Медведев Антонов Тарасов Жуков Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов
Осипов Сидоров Матвеев Титов Марков Миронов Крылов Куликов Карпов Власов Мельников Денисов
Гаврилов Тихонов Казаков Афанасьев Данилов Савельев Тимофеев Фомин Чернов Абрамов Мартынов
Ефимов Федотов Щербаков Назаров Калинин Исаев Чернышёв Быков Маслов Родионов Коновалов Лазарев
Воронин Климов Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников
Трофимов Леонов Соболев Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин
Ефремов Архипов Громов Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов
Анисимов Ерёмин Тихомиров Галкин Лукьянов Михеев Скворцов Юдин Белоусов Нестеров Симонов Прокофьев
Харитонов Князев Цветков Левин Митрофанов Воронцов Горшков Шубин Мухин Субботин Шилов Шестаков
Ковальчук Шевченко Бондаренко Коваленко Ткаченко Кравченко Мельник Лысенко Руденко Савченко
Зуев Пахомов Шишкин Жданов Лыткин Щукин Вишневский Ковальский Покровский Соколовский Яблонский
Рождественский Преображенский Успенский Вознесенский Островский Чайковский Достоевский Толстой
Гоголь Пушкин Лермонтов Шолохов Есенин Блок Ахматов Цой Ким Пак Ли Эйхман Шмидт Гофман Рихтер
Юсупов Ахмедов Алиев Мамедов Гасанов Хасанов Исмаилов Каримов Рахимов Назарбаев Абдуллаев
"""


def _words(block: str) -> tuple[str, ...]:
    out: list[str] = []
    for w in block.split():
        if w not in out:
            out.append(w)
    return tuple(out)


def female_surname(s: str) -> str:
    """The female form of a Russian surname (unchanged when it has none: Шевченко, Цой)."""
    for m, f in (("ский", "ская"), ("цкий", "цкая"), ("ой", "ая"), ("ов", "ова"), ("ёв", "ёва"),
                 ("ев", "ева"), ("ин", "ина"), ("ын", "ына")):
        if s.endswith(m):
            return s[: -len(m)] + f
    return s


def patronymic(first: str, female: bool) -> str | None:
    """Отчество from a male first name (regular names only; None for the irregular ones)."""
    if first.endswith("й"):
        stem, m, f = first[:-1], "евич", "евна"
    elif first[-1] in "аяьё":
        return None
    else:
        stem, m, f = first, "ович", "овна"
    return stem + (f if female else m)


@functools.lru_cache(maxsize=2)
def lists(lang: str) -> dict[str, tuple[str, ...]]:
    """{"first": ..., "surname": ...} of ``lang``; RU also "first_f", "surname_f", "patr"."""
    if lang == "en":
        return {"first": _words(EN_FIRST), "surname": _words(EN_SURNAME)}
    if lang == "ru":
        male = _words(RU_FIRST_M)
        sur = _words(RU_SURNAME)
        return {"first": male, "first_f": _words(RU_FIRST_F), "surname": sur,
                "surname_f": tuple(female_surname(s) for s in sur),
                "patr": tuple(p for m in male for p in (patronymic(m, False),) if p),
                "patr_f": tuple(p for m in male for p in (patronymic(m, True),) if p)}
    raise ValueError(f"unknown language {lang!r}; expected 'en' or 'ru'")


def _one(rng: np.random.Generator, seq: tuple[str, ...]) -> str:
    return seq[int(rng.integers(len(seq)))]


def full_name(rng: np.random.Generator, lang: str) -> str:
    """A name as written on a slip: a surname, a first name, both, or with initials.

    Case is left to the caller (forms are often in CAPITALS).
    """
    li = lists(lang)
    female = lang == "ru" and rng.random() < 0.5
    first = _one(rng, li["first_f"] if female else li["first"])
    sur = _one(rng, li["surname_f"] if female else li["surname"])
    kind = rng.random()
    if kind < 0.35:
        return sur
    if kind < 0.6:
        return first
    if kind < 0.75:
        return f"{first} {sur}" if lang == "en" or rng.random() < 0.4 else f"{sur} {first}"
    if kind < 0.88:  # initials
        if lang == "ru":
            patr = _one(rng, li["patr_f"] if female else li["patr"])
            return f"{sur} {first[0]}.{patr[0]}." if rng.random() < 0.7 else f"{first[0]}. {sur}"
        return f"{first[0]}. {sur}"
    if lang == "ru":  # patronymic
        patr = _one(rng, li["patr_f"] if female else li["patr"])
        return patr if rng.random() < 0.5 else f"{first} {patr}"
    return f"{sur}, {first}"
